"""Zero-shot APY on the xlsa17 (GBU) proposed split; see :func:`configs.zsl_base.xlsa17_config`.

    python train.py --config configs/xlsa17_apy.py --workdir /tmp/zsl_apy \
        --config.data.dir=/path/to/xlsa17/data      # holding APY/res101.mat and APY/att_splits.mat
"""

from configs.zsl_base import xlsa17_config


def get_config():
    return xlsa17_config("APY")
