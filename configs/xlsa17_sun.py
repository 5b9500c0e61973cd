"""Zero-shot SUN on the xlsa17 (GBU) proposed split; see :func:`configs.zsl_base.xlsa17_config`.

    python train.py --config configs/xlsa17_sun.py --workdir /tmp/zsl_sun \
        --config.data.dir=/path/to/xlsa17/data      # holding SUN/res101.mat and SUN/att_splits.mat
"""

from configs.zsl_base import xlsa17_config


def get_config():
    return xlsa17_config("SUN")
