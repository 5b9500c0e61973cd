"""Zero-shot AWA2 on the xlsa17 (GBU) proposed split; see :func:`configs.zsl_base.xlsa17_config`.

    python train.py --config configs/xlsa17_awa2.py --workdir /tmp/zsl_awa2 \
        --config.data.dir=/path/to/xlsa17/data      # holding AWA2/res101.mat and AWA2/att_splits.mat
"""

from configs.zsl_base import xlsa17_config


def get_config():
    return xlsa17_config("AWA2")
