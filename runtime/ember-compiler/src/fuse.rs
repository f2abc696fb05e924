//! Fusions over the lowered graph, where the pattern spans ops that the
//! lowering emitted separately.

use ember_runtime::format::OpCode;
use ember_runtime::ops::{conv, Params};
use ember_runtime::DType;

use crate::ir::Graph;

/// Folds an int8 table activation ([`OpCode::Lut`]: Sigmoid, HardSwish,
/// Tanh, … of a QDQ graph) into the int8 convolution that feeds it, when
/// the table is that convolution's only reader and its result is not a
/// graph output: the convolution requantizes as before, then looks its
/// outputs up in place (see [`conv::Params::table_zp`]). One op and one arena
/// tensor fewer per activation; the same bytes.
pub fn tables_into_convolutions(g: &mut Graph) {
    let n = g.tensors.len();
    let root = |t: usize| g.tensors[t].alias_of.unwrap_or(t);
    let mut readers = vec![0usize; n];
    for op in &g.ops {
        for &t in op.inputs.iter().flatten() {
            readers[root(t)] += 1;
        }
    }
    for &t in &g.outputs {
        readers[root(t)] += 1;
    }
    let mut producer = vec![None; n];
    for (i, op) in g.ops.iter().enumerate() {
        producer[op.output] = Some(i);
    }
    // The table ops folded away, in increasing order.
    let mut gone = vec![];
    for i in 0..g.ops.len() {
        let op = &g.ops[i];
        let (OpCode::Lut, Some(&Some(x)), Some(&Some(t))) =
            (op.opcode, op.inputs.first(), op.inputs.get(1))
        else {
            continue;
        };
        let y = op.output;
        let Some(j) = producer[x] else { continue };
        let conv = &g.ops[j];
        let int8 = |t: usize| g.tensors[t].dtype == DType::I8;
        let table: Option<[u8; 256]> = g.tensors[t].data.as_deref().and_then(|d| d.try_into().ok());
        let (Some(table), Some((_, zp)), Ok(p)) = (
            table,
            g.tensors[x].quant,
            conv::Params::from_words(&conv.params),
        ) else {
            continue;
        };
        let input_int8 = conv.inputs.first().copied().flatten().is_some_and(int8);
        if !matches!(conv.opcode, OpCode::Conv2d | OpCode::DepthwiseConv2d)
            || !input_int8
            || !int8(x)
            || !int8(y)
            || readers[x] != 1
            || g.tensors[x].alias_of.is_some()
            || p.table_zp.is_some()
        {
            continue;
        }
        let conv = &mut g.ops[j];
        conv.params.clear();
        p.encode_with_table(zp, &table, &mut conv.params);
        conv.output = y;
        producer[y] = Some(j);
        gone.push(i);
    }
    let mut k = 0;
    g.ops.retain(|_| {
        k += 1;
        gone.binary_search(&(k - 1)).is_err()
    });
}
