//! The parts of the `ember` command-line tool that other crates reuse (the
//! fuzz targets, `cargo xtask bench --html`): reading and writing
//! `.npy`/`.npz` tensors, the memory budget, `inspect`'s
//! table and JSON, the HTML report.

pub mod inspect;
pub mod limits;
pub mod npy;
pub mod report;
