# A stand-in for pip's get-pip.py, which ansible-test downloads from its own CI
# file host (unreachable here) to put pip into the empty virtualenvs it makes for
# sanity tests. Same contract: bootstrap pip, then `pip install ARGS` (get-pip's
# own --no-setuptools/--no-wheel mean "do not add those"). pip comes from the
# interpreter's ensurepip, then the pinned version from the package index.
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], stdout=subprocess.DEVNULL)
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--upgrade"] + args))
