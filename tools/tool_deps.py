"""What a tool says when a package it imports is missing: one line naming the interpreter that ran
it (sys.executable) and what would install the package for that interpreter. apt installs Debian's
packages for /usr/bin/python3 only, so for any other interpreter (a venv, pyenv, /usr/local) the
advice is its own pip, or running the tool with /usr/bin/python3 after apt. Standard library only:
it must work where nothing else is installed.
"""
import os
import sys

SYSTEM_PYTHON = "/usr/bin/python3"
# import name: (what it is called, pip's name, Debian's package)
PACKAGES = {
    "torch": ("PyTorch", "torch", "python3-torch"),
    "numpy": ("numpy", "numpy", "python3-numpy"),
    "matplotlib": ("matplotlib", "matplotlib", "python3-matplotlib"),
}


def is_system_python():
    """Debian's own interpreter outside any virtual environment: the one apt's python3-* serve."""
    return (sys.prefix == sys.base_prefix == "/usr"
            and os.path.dirname(sys.executable or "") in ("/usr/bin", "/bin"))


def missing(tool, error):
    """Exits 1 with one line for the ImportError `error` that `tool` (a path such as tools/export.py)
    met while importing its packages."""
    module = (getattr(error, "name", None) or "").split(".")[0]
    what, pip, apt = PACKAGES.get(module, (module or str(error), module, None))
    exe = sys.executable or "python3"
    if is_system_python() and apt:
        hint = f"apt install {apt}, or {exe} -m pip install {pip}"
    elif apt:
        hint = f"{exe} -m pip install {pip}, or run with {SYSTEM_PYTHON} after apt install {apt}"
    else:
        hint = f"{exe} -m pip install {pip}"
    raise SystemExit(f"error: {tool}: {what} is not installed for {exe} (try: {hint})")
