"""Remote devices: SSH connections with strict host keys (:mod:`~hwnas.remote.ssh`) and profiling a
device over SSH (:mod:`~hwnas.remote.profile`, the ``hwnas profile`` command in
:mod:`hwnas.cli.profile`). paramiko is imported lazily."""
