//! Command implementations shared by the binaries (the binaries only parse flags and print).
pub mod report;
