//! The parts of the `ember` command-line tool that other crates reuse (the
//! fuzz targets, for one): reading and writing `.npy`/`.npz` tensors.

pub mod limits;
pub mod npy;
