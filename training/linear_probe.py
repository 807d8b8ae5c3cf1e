"""Linear probing: a BatchNorm + linear head trained with SGD on the frozen encoder of `init_from`
(`init_from=null` probes a randomly initialised encoder).

    python -m training.linear_probe training/configs/ntu60_xsub/linear_probe.yaml [section.key=value ...]
"""

from .recipe import main

if __name__ == "__main__":
    main("linear_probe")
