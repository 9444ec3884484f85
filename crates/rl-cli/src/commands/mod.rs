//! One file per subcommand; each is a thin layer over the library crates.

pub mod convert;
pub mod doctor;
pub mod planned;
pub mod train;
