//! The one table of the ONNX operators the compiler accepts: for each
//! `op_type`, the function that lowers it and, for people, the data types
//! and attributes (or forms) it supports. [`Lowerer`]'s walk looks every
//! node up here once; the unsupported-operator error and `ember --list-ops`
//! are generated from it.

use ember_runtime::ops::unary::{UnaryFn, UnaryOp};
use tract_onnx::pb::NodeProto;

use super::attrs::{attr_f, attr_s, unsupported};
use super::recurrent::Cell;
use super::Lowerer;
use crate::error::{CompileError, Result};

/// How a node is lowered: the lowerer, the node's index in the graph, the
/// node.
pub(crate) type LowerFn = fn(&mut Lowerer<'_>, usize, &NodeProto) -> Result<()>;

/// One ONNX operator the compiler accepts.
#[derive(Clone, Copy)]
pub struct OpSupport {
    /// The operator's domain: empty for ONNX's default domain, or a
    /// contrib domain (`com.microsoft`, onnxruntime's operators).
    pub domain: &'static str,
    /// The ONNX `op_type`.
    pub op_type: &'static str,
    /// Element types it takes, and how it runs (float, int8 through the
    /// QDQ pattern, folded at compile time, …).
    pub dtypes: &'static str,
    /// The attributes and forms supported, in short.
    pub attrs: &'static str,
    /// Lowers a node of this type.
    pub(crate) lower: LowerFn,
}

impl std::fmt::Debug for OpSupport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpSupport")
            .field("domain", &self.domain)
            .field("op_type", &self.op_type)
            .field("dtypes", &self.dtypes)
            .field("attrs", &self.attrs)
            .finish_non_exhaustive()
    }
}

/// An entry of `domain`.
const fn entry(
    domain: &'static str,
    op_type: &'static str,
    dtypes: &'static str,
    attrs: &'static str,
    lower: LowerFn,
) -> OpSupport {
    OpSupport {
        domain,
        op_type,
        dtypes,
        attrs,
        lower,
    }
}

/// An operator of ONNX's default domain.
const fn op(
    op_type: &'static str,
    dtypes: &'static str,
    attrs: &'static str,
    lower: LowerFn,
) -> OpSupport {
    entry("", op_type, dtypes, attrs, lower)
}

/// onnxruntime's contrib domain.
pub(crate) const MS_DOMAIN: &str = "com.microsoft";

/// An operator of onnxruntime's `com.microsoft` domain (what its
/// quantization tools write).
const fn contrib(
    op_type: &'static str,
    dtypes: &'static str,
    attrs: &'static str,
    lower: LowerFn,
) -> OpSupport {
    entry(MS_DOMAIN, op_type, dtypes, attrs, lower)
}

impl OpSupport {
    /// `op_type`, prefixed by its domain when that is not ONNX's default.
    pub fn qualified_name(&self) -> String {
        if self.domain.is_empty() {
            self.op_type.to_string()
        } else {
            format!("{}.{}", self.domain, self.op_type)
        }
    }
}

/// "QDQ": `DequantizeLinear → op → [Relu|Clip] → QuantizeLinear` with
/// per-tensor int8 activations becomes one integer op.
const QDQ_F32: &str = "float; int8 (QDQ)";

/// Element-wise functions.
const UNARY: &str = "float; int8 (QDQ: a 256-entry table); constants folded";

/// An attribute that is not there.
const NONE: (&str, f32) = ("", 0.0);

/// A function without parameters.
const fn f(op: UnaryOp) -> UnaryFn {
    UnaryFn::of(op)
}

/// A function with the attributes `alpha` and `beta` (names, defaults).
fn fa(node: &NodeProto, op: UnaryOp, alpha: (&str, f32), beta: (&str, f32)) -> UnaryFn {
    UnaryFn {
        op,
        alpha: attr_f(node, alpha.0, alpha.1),
        beta: attr_f(node, beta.0, beta.1),
    }
}

/// `Gelu` with its `approximate` attribute.
fn gelu(node: &NodeProto) -> Result<UnaryFn> {
    match attr_s(node, "approximate").as_deref() {
        None | Some("none") => Ok(f(UnaryOp::Gelu)),
        Some("tanh") => Ok(f(UnaryOp::GeluTanh)),
        Some(a) => Err(unsupported(
            node,
            format!("approximate={a} is not supported (none, tanh are)"),
        )),
    }
}

/// `Celu`, whose `alpha` divides.
fn celu(node: &NodeProto) -> Result<UnaryFn> {
    let c = fa(node, UnaryOp::Celu, ("alpha", 1.0), NONE);
    if c.alpha == 0.0 || !c.alpha.is_finite() {
        return Err(unsupported(
            node,
            format!("alpha={} (must be finite, not 0)", c.alpha),
        ));
    }
    Ok(c)
}

/// Every operator, grouped by family (the module that lowers it).
pub(crate) static OPS: &[OpSupport] = &[
    // values
    op("Constant", "any", "value (a tensor), value_float(s), value_int(s)", |lw, _, n| lw.lower_constant(n)),
    op("Identity", "any", "-", |lw, _, n| lw.lower_identity(n)),
    op("Dropout", "any", "inference only: training_mode false, no mask output", |lw, _, n| lw.lower_dropout(n)),
    op("Cast", "float, double (as float), float16, bfloat16, int8, uint8, int16, uint16, int32, int64 (as int32), bool", "to; constants folded", |lw, _, n| lw.lower_cast_node(n)),
    op("CastLike", "as Cast", "the target type from the second input", |lw, _, n| lw.lower_cast_like(n)),
    // quantization
    op("QuantizeLinear", "float → int8, uint8", "per-tensor constant scale and zero point", |lw, _, n| lw.lower_quantize(n)),
    op("DequantizeLinear", "int8, uint8, int32 → float", "axis (per-axis for constants); per-tensor for activations", |lw, _, n| lw.lower_dequantize(n)),
    op("DynamicQuantizeLinear", "float → uint8", "only into MatMulInteger/ConvInteger → Cast → Mul [→ Add]", |lw, _, n| lw.lower_dynamic_quantize(n)),
    // convolution
    op("Conv", QDQ_F32, "1-D, 2-D; group (depthwise), strides, dilations, pads, auto_pad, kernel_shape; constant weights and bias", |lw, _, n| lw.lower_conv_node(n)),
    op("QLinearConv", "int8", "2-D; group, strides, dilations, pads, auto_pad; zero weight zero points", |lw, _, n| lw.lower_qlinear_conv(n)),
    op("ConvInteger", "int8, uint8 × int8", "2-D (1-D when dynamically quantized); constant weights and zero points", |lw, _, n| lw.lower_integer_op(n)),
    // matrix products
    op("MatMul", QDQ_F32, "constant 2-D B (fully connected, + bias Add); two runtime operands of equal rank ≥ 2 (attention fused)", |lw, _, n| lw.lower_matmul_node(n)),
    op("Einsum", "float", "one or two operands, no ellipsis, no repeated letter within an operand (transposes, sums, batched/outer/inner products)", |lw, _, n| lw.lower_einsum(n)),
    op("Gemm", QDQ_F32, "transB, alpha, beta (float), constant C; transA=0", |lw, _, n| lw.lower_matmul(n)),
    op("QLinearMatMul", "int8", "constant 2-D B, one weight zero point", |lw, _, n| lw.lower_qlinear_matmul(n)),
    op("MatMulInteger", "int8, uint8 × int8", "constant 2-D B", |lw, _, n| lw.lower_integer_op(n)),
    // element-wise
    op("Add", "float, int32 (int64 as int32); int8 (QDQ); constants folded", "numpy broadcasting; Relu/Clip fused", |lw, i, n| lw.lower_binary(i, n)),
    op("Sub", "float, int32 (int64 as int32); constants folded", "numpy broadcasting; Relu/Clip fused", |lw, i, n| lw.lower_binary(i, n)),
    op("Mul", "float, int32 (int64 as int32); int8 (QDQ, TFLite rounding); constants folded", "numpy broadcasting; Relu/Clip fused; erf GELU fused", |lw, i, n| lw.lower_mul_div(i, n)),
    op("Div", "float, int32 (int64 as int32, truncated); constants folded", "numpy broadcasting; Relu/Clip fused; erf GELU fused", |lw, i, n| lw.lower_mul_div(i, n)),
    op("Pow", "float, int32 (int64 as int32); constants folded", "numpy broadcasting; integer exponents of int32 bases", |lw, i, n| lw.lower_binary(i, n)),
    op("Mod", "float (fmod=1), int32 (int64 as int32); constants folded", "fmod; numpy broadcasting", |lw, i, n| lw.lower_binary(i, n)),
    op("PRelu", "float, int32 (int64 as int32); constants folded", "slope broadcast to the input", |lw, i, n| lw.lower_binary(i, n)),
    op("Max", "float, int32 (int64 as int32); constants folded", "any number of inputs; numpy broadcasting; NaN propagates", |lw, i, n| lw.lower_variadic(i, n)),
    op("Min", "float, int32 (int64 as int32); constants folded", "any number of inputs; numpy broadcasting; NaN propagates", |lw, i, n| lw.lower_variadic(i, n)),
    op("Sum", "float, int32; int8 (QDQ); constants folded", "any number of inputs; numpy broadcasting", |lw, i, n| lw.lower_variadic(i, n)),
    op("Mean", "float; constants folded", "any number of inputs; numpy broadcasting", |lw, i, n| lw.lower_variadic(i, n)),
    op("Relu", QDQ_F32, "fused into the op before when it can be", |lw, _, n| lw.lower_clamp(n)),
    op("Clip", QDQ_F32, "min, max (attributes or constant inputs)", |lw, _, n| lw.lower_clamp(n)),
    op("Sqrt", "float; constants folded", "-", |lw, _, n| lw.lower_sqrt(n)),
    // element-wise functions: f32 kernel, int8 table in the QDQ pattern
    op("Erf", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Erf))),
    op("Sigmoid", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Sigmoid))),
    op("Tanh", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Tanh))),
    op("Exp", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Exp))),
    op("Log", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Log))),
    op("Abs", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Abs))),
    op("Neg", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Neg))),
    op("Reciprocal", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Reciprocal))),
    op("Floor", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Floor))),
    op("Ceil", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Ceil))),
    op("Round", UNARY, "halves to even", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Round))),
    op("Sign", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Sign))),
    op("Softplus", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Softplus))),
    op("Softsign", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Softsign))),
    op("Mish", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Mish))),
    op("HardSwish", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::HardSwish))),
    op("Sin", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Sin))),
    op("Cos", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Cos))),
    op("Tan", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Tan))),
    op("Asin", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Asin))),
    op("Acos", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Acos))),
    op("Atan", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Atan))),
    op("Sinh", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Sinh))),
    op("Cosh", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Cosh))),
    op("Asinh", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Asinh))),
    op("Acosh", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Acosh))),
    op("Atanh", UNARY, "-", |lw, _, n| lw.lower_unary(n, f(UnaryOp::Atanh))),
    op("Gelu", UNARY, "approximate (none, tanh)", |lw, _, n| lw.lower_unary(n, gelu(n)?)),
    op("HardSigmoid", UNARY, "alpha, beta", |lw, _, n| lw.lower_unary(n, fa(n, UnaryOp::HardSigmoid, ("alpha", 0.2), ("beta", 0.5)))),
    op("LeakyRelu", UNARY, "alpha", |lw, _, n| lw.lower_unary(n, fa(n, UnaryOp::LeakyRelu, ("alpha", 0.01), NONE))),
    op("Elu", UNARY, "alpha", |lw, _, n| lw.lower_unary(n, fa(n, UnaryOp::Elu, ("alpha", 1.0), NONE))),
    op("Selu", UNARY, "alpha, gamma", |lw, _, n| lw.lower_unary(n, fa(n, UnaryOp::Selu, ("alpha", 1.673_263_2), ("gamma", 1.050_701)))),
    op("Celu", UNARY, "alpha (not 0)", |lw, _, n| lw.lower_unary(n, celu(n)?)),
    op("ThresholdedRelu", UNARY, "alpha", |lw, _, n| lw.lower_unary(n, fa(n, UnaryOp::ThresholdedRelu, ("alpha", 1.0), NONE))),
    // comparisons and logic
    op("Equal", "float, int32, uint8; constants folded", "numpy broadcasting", |lw, _, n| lw.lower_compare(n)),
    op("Greater", "float, int32, uint8; constants folded", "numpy broadcasting", |lw, _, n| lw.lower_compare(n)),
    op("GreaterOrEqual", "float, int32, uint8; constants folded", "numpy broadcasting", |lw, _, n| lw.lower_compare(n)),
    op("Less", "float, int32, uint8; constants folded", "numpy broadcasting", |lw, _, n| lw.lower_compare(n)),
    op("LessOrEqual", "float, int32, uint8; constants folded", "numpy broadcasting", |lw, _, n| lw.lower_compare(n)),
    op("And", "bool; constants folded", "numpy broadcasting", |lw, _, n| lw.lower_compare(n)),
    op("Or", "bool; constants folded", "numpy broadcasting", |lw, _, n| lw.lower_compare(n)),
    op("Xor", "bool; constants folded", "numpy broadcasting", |lw, _, n| lw.lower_compare(n)),
    op("IsNaN", "float", "-", |lw, _, n| lw.lower_is_special(n)),
    op("IsInf", "float", "detect_positive, detect_negative", |lw, _, n| lw.lower_is_special(n)),
    op("Not", "bool; constants folded", "-", |lw, _, n| lw.lower_not(n)),
    op("Where", "bool condition; float, int32, uint8 values; constants folded", "numpy broadcasting", |lw, _, n| lw.lower_where(n)),
    // pooling, softmax, reductions
    op("AveragePool", QDQ_F32, "2-D; kernel_shape, strides, pads, auto_pad, count_include_pad; no ceil_mode, no dilations", |lw, _, n| lw.lower_pool(n)),
    op("MaxPool", QDQ_F32, "2-D; kernel_shape, strides, pads, auto_pad; no ceil_mode, no dilations", |lw, _, n| lw.lower_pool(n)),
    op("GlobalAveragePool", QDQ_F32, "4-D", |lw, _, n| lw.lower_pool(n)),
    op("LpPool", "float", "p, 1-D to 3-D windows as AveragePool takes them", |lw, _, n| lw.lower_lp_pool(n)),
    op("GlobalMaxPool", QDQ_F32, "4-D", |lw, _, n| lw.lower_pool(n)),
    op("Softmax", QDQ_F32, "any axis (opset < 13: the axes from axis on, flattened); int8 output 1/256, -128 with TFLite rounding", |lw, _, n| lw.lower_softmax(n)),
    op("LogSoftmax", "float", "any axis (opset < 13: the axes from axis on, flattened)", |lw, _, n| lw.lower_softmax(n)),
    op("Hardmax", "float", "any axis (opset < 13: the axes from axis on, flattened)", |lw, _, n| lw.lower_softmax(n)),
    op("ReduceSum", "float", "axes (attribute or constant input), keepdims, noop_with_empty_axes", |lw, _, n| lw.lower_reduce(n)),
    op("ReduceMean", "float", "axes (attribute or constant input), keepdims, noop_with_empty_axes", |lw, _, n| lw.lower_reduce(n)),
    op("ReduceMax", "float", "axes (attribute or constant input), keepdims, noop_with_empty_axes", |lw, _, n| lw.lower_reduce(n)),
    op("ReduceMin", "float", "axes (attribute or constant input), keepdims, noop_with_empty_axes", |lw, _, n| lw.lower_reduce(n)),
    op("ReduceProd", "float", "axes (attribute or constant input), keepdims, noop_with_empty_axes", |lw, _, n| lw.lower_reduce(n)),
    op("ReduceL1", "float", "axes (attribute or constant input), keepdims, noop_with_empty_axes", |lw, _, n| lw.lower_reduce(n)),
    op("ReduceL2", "float", "axes (attribute or constant input), keepdims, noop_with_empty_axes", |lw, _, n| lw.lower_reduce(n)),
    op("ReduceSumSquare", "float", "axes (attribute or constant input), keepdims, noop_with_empty_axes", |lw, _, n| lw.lower_reduce(n)),
    op("ReduceLogSum", "float", "axes (attribute or constant input), keepdims, noop_with_empty_axes", |lw, _, n| lw.lower_reduce(n)),
    op("ReduceLogSumExp", "float", "axes (attribute or constant input), keepdims, noop_with_empty_axes", |lw, _, n| lw.lower_reduce(n)),
    op("ArgMax", "float in, int64 (as int32) out", "axis, keepdims, select_last_index", |lw, _, n| lw.lower_reduce(n)),
    op("ArgMin", "float in, int64 (as int32) out", "axis, keepdims, select_last_index", |lw, _, n| lw.lower_reduce(n)),
    // normalization, transformers
    op("BatchNormalization", "float", "epsilon; constant parameters; folded into the Conv/Gemm before it", |lw, _, n| lw.lower_batchnorm(n)),
    op("InstanceNormalization", "float", "epsilon; constant scale and bias", |lw, _, n| lw.lower_instance_group_norm(n)),
    op("GroupNormalization", "float", "num_groups, epsilon; constant scale and bias (per channel, or per group as in opset 18)", |lw, _, n| lw.lower_instance_group_norm(n)),
    op("LRN", "float", "size, alpha, beta, bias", |lw, _, n| lw.lower_lrn(n)),
    op("LpNormalization", "float", "axis, p = 1 or 2", |lw, _, n| lw.lower_lp_norm(n)),
    op("RMSNormalization", "float", "axis, epsilon; constant scale", |lw, _, n| lw.lower_rms_norm(n)),
    op("LayerNormalization", "float", "any axis, epsilon, constant scale and bias (broadcast); no mean/inv-std-dev outputs", |lw, _, n| lw.lower_layer_norm(n)),
    // shapes
    op("Reshape", "any", "constant shape (0, -1), allowzero", |lw, _, n| lw.lower_reshape(n)),
    op("Flatten", "any", "axis", |lw, _, n| lw.lower_reshape(n)),
    op("Squeeze", "any", "axes (attribute or constant input)", |lw, _, n| lw.lower_reshape(n)),
    op("Unsqueeze", "any", "axes (attribute or constant input)", |lw, _, n| lw.lower_reshape(n)),
    op("Transpose", "any", "perm (changes the layout; no data moves)", |lw, _, n| lw.lower_transpose(n)),
    op("Shape", "any", "start, end; folded at compile time", |lw, _, n| lw.lower_shape(n)),
    op("Size", "any", "folded at compile time", |lw, _, n| lw.lower_size(n)),
    op("ConstantOfShape", "any", "constant shape, value; folded", |lw, _, n| lw.lower_constant_of_shape(n)),
    op("Range", "float, int32, int64", "constant scalars; folded", |lw, _, n| lw.fold_range(n)),
    op("Expand", "any", "constant shape; constants folded", |lw, _, n| lw.lower_expand(n)),
    op("Concat", "float; constants folded", "axis; at most 8 runtime inputs", |lw, _, n| lw.lower_concat(n)),
    op("Pad", QDQ_F32, "mode constant, edge, reflect, wrap; pads (attribute or constant input, non-negative), constant value, constant axes", |lw, _, n| lw.lower_pad(n)),
    op("Gather", "float, int8, uint8, int32 (int8 tables of embeddings stay int8); integer indices", "axis; constants folded", |lw, _, n| lw.lower_gather(n)),
    op("ConvTranspose", "float (int8 QDQ dequantized)", "1-D, 2-D; group, strides, dilations, pads, output_padding, output_shape, auto_pad; constant filter and bias; Relu/Clip fused", |lw, _, n| lw.lower_conv_transpose(n)),
    op("Resize", "float; int8 (QDQ, nearest)", "mode nearest, linear (not cubic); every coordinate_transformation_mode and nearest_mode; constant scales or sizes, axes, keep_aspect_ratio_policy, roi; antialias only when not downsampling", |lw, _, n| lw.lower_resize(n)),
    op("Upsample", "float; int8 (QDQ, nearest)", "mode nearest, linear; scales (attribute or constant input)", |lw, _, n| lw.lower_resize(n)),
    op("GatherElements", "any 1- or 4-byte type; int64 indices (as int32), checked at run time", "axis; negative indices", |lw, _, n| lw.lower_gather_elements(n)),
    op("CumSum", "float, int32 (int64 as int32)", "constant axis, exclusive, reverse", |lw, _, n| lw.lower_cumsum(n)),
    op("OneHot", "integer or float indices; float or int values", "axis; constant depth and values; negative indices", |lw, _, n| lw.lower_one_hot(n)),
    op("TopK", "float in; values and int64 (as int32) indices out", "axis, largest, constant k; sorted (always, ties to the lower index)", |lw, _, n| lw.lower_top_k(n)),
    op("Trilu", "float, int32", "upper, constant k", |lw, _, n| lw.lower_trilu(n)),
    op("NegativeLogLikelihoodLoss", "float scores, int64 (as int32) targets checked at run time", "reduction none, sum, mean; ignore_index; class weights", |lw, _, n| lw.lower_nll_loss(n)),
    op("SoftmaxCrossEntropyLoss", "float scores, int64 (as int32) targets checked at run time", "reduction, ignore_index, class weights; the log_prob output", |lw, _, n| lw.lower_softmax_cross_entropy(n)),
    op("DepthToSpace", "any (int8 QDQ stays int8)", "blocksize, mode DCR or CRD; NCHW", |lw, _, n| lw.lower_depth_space(n)),
    op("SpaceToDepth", "any (int8 QDQ stays int8)", "blocksize; NCHW", |lw, _, n| lw.lower_depth_space(n)),
    op("Tile", "any; constants folded", "constant repeats; rank at most 5", |lw, _, n| lw.lower_tile(n)),
    op("Slice", "any (int8 QDQ stays int8); constants folded", "constant starts, ends, axes, steps (negative too); opset 1 attributes", |lw, _, n| lw.lower_slice(n)),
    op("LSTM", "float (unrolled over the sequence)", "directions, layout, activations (alpha, beta), clip, input_forget, peepholes; constant W, R, B, P, sequence_lens; initial states constant or runtime; Y, Y_h, Y_c", |lw, i, n| lw.lower_recurrent(i, n, Cell::Lstm)),
    op("GRU", "float (unrolled over the sequence)", "directions, layout, activations (alpha, beta), clip, linear_before_reset; constant W, R, B, sequence_lens; initial state constant or runtime; Y, Y_h", |lw, i, n| lw.lower_recurrent(i, n, Cell::Gru)),
    op("RNN", "float (unrolled over the sequence)", "directions, layout, activations (alpha, beta), clip; constant W, R, B, sequence_lens; initial state constant or runtime; Y, Y_h", |lw, i, n| lw.lower_recurrent(i, n, Cell::Rnn)),
    op("Split", "any (int8 QDQ stays int8); constants folded", "constant split sizes, or num_outputs / equal parts", |lw, _, n| lw.lower_split(n)),
    contrib("DynamicQuantizeLSTM", "float activations and state; int8 weights (per tensor or per gate row, zero point 0) run by dynamic int8 fully connected ops", "as LSTM (no layout); onnxruntime's quantize_dynamic writes it", |lw, i, n| lw.lower_recurrent(i, n, Cell::Lstm)),
];

/// The entry of `op_type` in `domain` (empty or `ai.onnx` for ONNX's
/// default domain).
pub(crate) fn find(domain: &str, op_type: &str) -> Option<&'static OpSupport> {
    let domain = if domain == "ai.onnx" { "" } else { domain };
    OPS.iter()
        .find(|o| o.domain == domain && o.op_type == op_type)
}

/// The error for an operator the table does not have (one line; `ember
/// --list-ops` prints the table).
pub(crate) fn unknown_op(node: &NodeProto) -> CompileError {
    let name = if node.domain.is_empty() || node.domain == "ai.onnx" {
        node.op_type.clone()
    } else {
        format!("{}.{}", node.domain, node.op_type)
    };
    unsupported(
        node,
        format!(
            "Ember has no kernel for '{name}' (`ember --list-ops` lists the {} operators it supports)",
            OPS.len()
        ),
    )
}

/// Every ONNX operator the compiler accepts, with the data types and
/// attributes supported: the default domain's sorted by `op_type`, then
/// the contrib domains'.
pub fn supported_ops() -> Vec<OpSupport> {
    let mut ops = OPS.to_vec();
    ops.sort_unstable_by_key(|o| (o.domain, o.op_type));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_types_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for o in OPS {
            assert!(
                seen.insert((o.domain, o.op_type)),
                "{} is in the table twice",
                o.qualified_name()
            );
        }
    }

    #[test]
    fn unknown_op_error_is_one_line_naming_it_and_the_list() {
        let node = NodeProto {
            op_type: "Frobnicate".into(),
            name: "f0".into(),
            ..Default::default()
        };
        let msg = unknown_op(&node).to_string();
        assert!(msg.contains("'Frobnicate'"), "{msg}");
        assert!(msg.contains("ember --list-ops"), "{msg}");
        assert!(msg.contains(&OPS.len().to_string()), "{msg}");
        assert!(!msg.contains('\n') && msg.len() < 200, "{msg}");
    }

    #[test]
    fn supported_ops_are_sorted_and_described() {
        let ops = supported_ops();
        assert_eq!(ops.len(), OPS.len());
        assert!(ops
            .windows(2)
            .all(|w| (w[0].domain, w[0].op_type) < (w[1].domain, w[1].op_type)));
        assert!(ops
            .iter()
            .all(|o| !o.dtypes.is_empty() && !o.attrs.is_empty()));
    }
}
