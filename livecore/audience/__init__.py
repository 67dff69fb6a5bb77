"""Audience traces: the versioned file format (``trace``) and the recorder of live
room traffic (``recorder``), shared by the server (``--record-trace``) and the
load tester (``python -m loadtests replay``)."""
