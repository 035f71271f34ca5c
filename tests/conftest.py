"""Root conftest: its folder (tests/) goes on sys.path, so test modules can ``import helpers``.

``helpers.py`` holds what several test modules and the benchmarks need: free ports, the app
as a subprocess, a private data dir, resident memory of a process.
"""
