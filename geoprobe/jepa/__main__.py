import sys

from .cli import main

sys.exit(main(["jepa", *sys.argv[1:]]))
