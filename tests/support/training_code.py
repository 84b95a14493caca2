"""Scenario training code as the failure tests change it: a fault that happens only when the
code runs as a training job, so the notebook's own prototype of it (in the kernel) still trains
and the failure is the platform's train step's to report."""

from __future__ import annotations


def as_a_job_only(source: str, instead: str) -> str:
    """train.py's source with `instead` run in place of training when it runs as a job
    (torchrun sets WORLD_SIZE); run any other way (the notebook's prototype) it still trains."""
    main = 'if __name__ == "__main__":\n    main()'
    assert source.rstrip().endswith(main), "the training code no longer ends by calling main()"
    body = "".join(f"        {line}\n" for line in instead.splitlines())
    return (source.rstrip().removesuffix(main)
            + f'def job_or_main():\n    if "WORLD_SIZE" in os.environ:\n{body}'
            + '    else:\n        main()\n\n\nif __name__ == "__main__":\n    job_or_main()\n')
