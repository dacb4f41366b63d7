#!/usr/bin/env python
from passnum.cli import main

if __name__ == "__main__":
    main()
