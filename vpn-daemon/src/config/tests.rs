//! Tests of the whole pipeline: files and arguments to a typed Config.
