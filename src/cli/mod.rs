//! Command implementations shared by the binaries (the binaries only parse flags and print).
pub mod alloc;
pub mod eval;
pub mod prepare;
pub mod report;
pub mod score;
pub mod serve;
pub mod train;
