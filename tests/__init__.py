"""jobwire's tests, a package (``tests.…``) so that its folders can be named like the sources."""
