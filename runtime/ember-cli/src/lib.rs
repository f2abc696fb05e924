//! The parts of the `ember` command-line tool that other crates reuse (the
//! fuzz targets, `cargo xtask bench --html`): reading and writing
//! `.npy`/`.npz` tensors and the rules that carry host arrays into graph
//! inputs, the memory budget, `inspect`'s
//! table and JSON, the HTML report, progress bars.

pub mod host_array;
pub mod inspect;
pub mod limits;
pub mod npy;
pub mod progress;
pub mod quant_report;
pub mod report;
pub mod stream;
