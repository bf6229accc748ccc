//! Repository rules as a test: see `tidy` below.
