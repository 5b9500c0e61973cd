"""Zero-shot CUB on the xlsa17 (GBU) proposed split; see :func:`configs.zsl_base.xlsa17_config`.

    python train.py --config configs/xlsa17_cub.py --workdir /tmp/zsl_cub \
        --config.data.dir=/path/to/xlsa17/data      # holding CUB/res101.mat and CUB/att_splits.mat
"""

from configs.zsl_base import xlsa17_config


def get_config():
    return xlsa17_config("CUB")
