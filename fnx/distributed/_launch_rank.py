"""What each rank runs under ``python -m fnx.distributed.run``: torchrun's environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``) from the MPI launcher's
own variables (MPICH's Hydra: ``PMI_RANK``, ``PMI_SIZE``, ``MPI_LOCALRANKID``,
``MPI_LOCALNRANKS``; Open MPI's ``OMPI_COMM_WORLD_*``), then the script as ``__main__``, so
that PyTorch scripts reading ``int(os.environ["LOCAL_RANK"])`` before any fnx call run
unchanged. Values already in the environment win.
"""

import os
import runpy
import sys

_FROM = {"RANK": ("PMI_RANK", "OMPI_COMM_WORLD_RANK"),
         "WORLD_SIZE": ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"),
         "LOCAL_RANK": ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK"),
         "LOCAL_WORLD_SIZE": ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")}


def set_rank_environment(environ=os.environ):
    """Copy the launcher's rank variables to torchrun's names in ``environ``.

    >>> from fnx.distributed._launch_rank import set_rank_environment
    >>> env = {"PMI_RANK": "1", "PMI_SIZE": "2", "MPI_LOCALRANKID": "1"}
    >>> set_rank_environment(env); env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"]
    ('1', '2', '1')
    """
    for name, sources in _FROM.items():
        value = next((environ[s] for s in sources if s in environ), None)
        if value is not None:
            environ.setdefault(name, value)


def main():
    set_rank_environment()
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as ``python script.py``
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
