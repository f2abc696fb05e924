//! The one declaration of every operator family, its opcodes and its
//! kernels. `op_codes.rs` expands it into the [`OpCode`](crate::OpCode)
//! and [`Kernel`](crate::Kernel) enums and their names; [`crate::ops`]
//! expands it into the module list and the dispatch. Adding an operator
//! adds an entry here and a module under `ops/`.

/// Whether a family of the table is a transformer family.
macro_rules! is_transformer {
    (core) => {
        false
    };
    (transformer) => {
        true
    };
}

/// Calls `$expand!` with the table.
macro_rules! op_table {
    ($expand:ident) => {
        $expand! {
            /// Convolutions: regular and depthwise, int8 and f32.
            conv (core) {
                ops: [
                    /// Convolution. Inputs: x `[N,H,W,Ci]`, filter `[Co,Kh,Kw,Ci/g]`,
                    /// bias `[Co]` (i32 for int8, f32 for float; optional), requant
                    /// (int8 only). Output `[N,Ho,Wo,Co]`. Params: [`crate::ops::conv::Params`].
                    Conv2d = 1,
                    /// Depthwise convolution. Inputs: x `[N,H,W,Ci]`, filter
                    /// `[1,Kh,Kw,Co]` (`Co = Ci × multiplier`), bias, requant. Params:
                    /// [`crate::ops::conv::Params`] with `groups` the depth multiplier.
                    DepthwiseConv2d = 2,
                ]
                kernels: [
                    /// int8 convolution, reference.
                    ConvS8 = "conv2d_s8",
                    /// int8 convolution, optimized (pointwise or gathered windows),
                    /// TFLite rounding.
                    ConvS8Opt = "conv2d_s8_opt",
                    /// int8 convolution, optimized, float requantization (onnxruntime).
                    ConvS8OptFloat = "conv2d_s8_opt_float",
                    /// int8 depthwise convolution, reference.
                    DepthwiseS8 = "depthwise_conv2d_s8",
                    /// int8 depthwise convolution, optimized, TFLite rounding.
                    DepthwiseS8Opt = "depthwise_conv2d_s8_opt",
                    /// int8 depthwise convolution, optimized, float requantization
                    /// (onnxruntime).
                    DepthwiseS8OptFloat = "depthwise_conv2d_s8_opt_float",
                    /// f32 convolution, reference.
                    ConvF32 = "conv2d_f32",
                    /// f32 convolution, optimized.
                    ConvF32Opt = "conv2d_f32_opt",
                    /// f32 depthwise convolution, reference.
                    DepthwiseF32 = "depthwise_conv2d_f32",
                    /// f32 depthwise convolution, optimized.
                    DepthwiseF32Opt = "depthwise_conv2d_f32_opt",
                ]
            }
            /// Fully connected layers, int8 and f32.
            fully_connected (core) {
                ops: [
                    /// Fully connected: `y[m, n] = Σ_k x[m, k] · w[n, k] + b[n]`.
                    /// Inputs: x `[.., K]`, w `[N, K]`, bias `[N]` (optional),
                    /// requant (int8 only). Output `[.., N]`. Params:
                    /// [`crate::ops::fully_connected::Params`]. For int8 the weight zero point
                    /// comes from the weight tensor.
                    FullyConnected = 3,
                ]
                kernels: [
                    /// int8 fully connected, reference.
                    FullyConnectedS8 = "fully_connected_s8",
                    /// int8 fully connected, optimized.
                    FullyConnectedS8Opt = "fully_connected_s8_opt",
                    /// f32 fully connected, reference.
                    FullyConnectedF32 = "fully_connected_f32",
                    /// f32 fully connected, optimized.
                    FullyConnectedF32Opt = "fully_connected_f32_opt",
                ]
            }
            /// Element-wise arithmetic with broadcasting.
            binary (core) {
                ops: [
                    /// Element-wise add with numpy broadcasting. Inputs: a, b.
                    /// Params: [`crate::ops::binary::Params`].
                    Add = 4,
                    /// Element-wise multiply with broadcasting. Params:
                    /// [`crate::ops::binary::Params`].
                    Mul = 5,
                    /// Element-wise subtract (f32) with broadcasting. Params:
                    /// [`crate::ops::binary::Params`].
                    Sub = 16,
                    /// Element-wise divide (f32) with broadcasting. Params:
                    /// [`crate::ops::binary::Params`].
                    Div = 17,
                    /// Element-wise power (f32, i32) with broadcasting. Params:
                    /// [`crate::ops::binary::Params`].
                    Pow = 30,
                    /// Element-wise minimum (f32, i32) with broadcasting.
                    Min = 31,
                    /// Element-wise maximum (f32, i32) with broadcasting.
                    Max = 32,
                    /// Remainder with the divisor's sign (i32; f32 as `fmod`).
                    Mod = 33,
                    /// Remainder with the dividend's sign (`fmod`; i32 `%`).
                    Fmod = 34,
                    /// `a` where it is not negative, else `a × b` (b: the
                    /// slope, broadcast; ONNX `PRelu`).
                    PRelu = 35,
                ]
                kernels: [
                    /// f32 arithmetic, power, min/max and remainder with
                    /// broadcasting.
                    BinaryF32 = "binary_f32",
                    /// i32 arithmetic, power, min/max and remainder with
                    /// broadcasting (wrapping; division by zero is an error).
                    BinaryI32 = "binary_i32",
                    /// int8 add with TFLite rounding, reference.
                    AddS8 = "add_s8",
                    /// int8 add with TFLite rounding, same-shape operands, optimized.
                    AddS8Opt = "add_s8_opt",
                    /// int8 multiply with TFLite rounding.
                    MulS8 = "mul_s8",
                    /// int8 element-wise op through float (onnxruntime rounding).
                    BinaryS8Float = "binary_s8_float",
                ]
            }
            /// Average and max pooling.
            pool (core) {
                ops: [
                    /// Average pooling over NHWC. Input x, output y. Params:
                    /// [`crate::ops::pool::Params`].
                    AvgPool2d = 6,
                    /// Max pooling over NHWC. Params: [`crate::ops::pool::Params`].
                    MaxPool2d = 7,
                ]
                kernels: [
                    /// int8 global average pool, optimized.
                    GlobalAvgPoolS8Opt = "global_avg_pool_s8_opt",
                    /// int8 average pool with TFLite rounding.
                    AvgPoolS8 = "avg_pool_s8",
                    /// int8 average pool rounded around the zero point (onnxruntime).
                    AvgPoolS8Zp = "avg_pool_s8_zp",
                    /// int8 max pool.
                    MaxPoolS8 = "max_pool_s8",
                    /// f32 average pool.
                    AvgPoolF32 = "avg_pool_f32",
                    /// f32 max pool.
                    MaxPoolF32 = "max_pool_f32",
                ]
            }
            /// Softmax and its relatives over the last axis.
            softmax (core) {
                ops: [
                    /// Softmax over the last axis. Params: [`crate::ops::softmax::Params`].
                    Softmax = 8,
                    /// Log of the softmax over the last axis (f32). Params:
                    /// [`crate::ops::softmax::Params`].
                    LogSoftmax = 37,
                    /// 1 at the first maximum of each row of the last axis, 0
                    /// elsewhere (f32). Params: [`crate::ops::softmax::Params`].
                    Hardmax = 38,
                ]
                kernels: [
                    /// f32 softmax.
                    SoftmaxF32 = "softmax_f32",
                    /// int8 softmax with TFLite's fixed-point arithmetic.
                    SoftmaxS8 = "softmax_s8",
                    /// int8 softmax through float (onnxruntime).
                    SoftmaxS8Float = "softmax_s8_float",
                    /// f32 log-softmax.
                    LogSoftmaxF32 = "log_softmax_f32",
                    /// f32 hardmax.
                    HardmaxF32 = "hardmax_f32",
                ]
            }
            /// Axis permutation.
            transpose (core) {
                ops: [
                    /// Copies x into y with axes permuted. Params:
                    /// [`crate::ops::transpose::Params`].
                    Transpose = 9,
                ]
                kernels: [
                    /// Transpose of any element type.
                    Transpose = "transpose",
                ]
            }
            /// Byte copies.
            copy (core) {
                ops: [
                    /// Copies bytes unchanged (a reshape that could not be an
                    /// alias). No params.
                    Copy = 10,
                ]
                kernels: [
                    /// Byte copy.
                    Copy = "copy",
                ]
            }
            /// Ops that index by their input data.
            index (transformer) {
                ops: [
                    /// `y[p] = x[p with its axis coordinate = idx[p]]`. Inputs:
                    /// x, idx (i32). Params: [`crate::ops::index::Params`].
                    GatherElements = 40,
                    /// Negative log-likelihood loss. Inputs: log-probabilities
                    /// `[n, c, ..]` f32, targets `[n, ..]` i32, class weights
                    /// (optional). Params: [`crate::ops::index::Params`].
                    NllLoss = 41,
                    /// Cumulative sum along an axis (f32, i32). Params:
                    /// [`crate::ops::index::Params`].
                    CumSum = 42,
                    /// The `k` best values (f32) or their indices (i32) along
                    /// an axis. Params: [`crate::ops::index::Params`].
                    TopK = 44,
                ]
                kernels: [
                    /// GatherElements of 1- or 4-byte elements.
                    GatherElements = "gather_elements",
                    /// f32 negative log-likelihood loss.
                    NllLossF32 = "nll_loss_f32",
                    /// f32 or wrapping i32 cumulative sum.
                    CumSum = "cumsum",
                    /// f32 top-k values or indices.
                    TopKF32 = "top_k_f32",
                ]
            }
            /// Transposed convolution.
            conv_transpose (core) {
                ops: [
                    /// Transposed convolution, f32 NHWC. Inputs: x, filter
                    /// `[kh, kw, c, m/groups]`, bias `[m]` (optional). Params:
                    /// [`crate::ops::conv_transpose::Params`].
                    ConvTranspose = 43,
                ]
                kernels: [
                    /// f32 transposed convolution.
                    ConvTransposeF32 = "conv_transpose_f32",
                ]
            }
            /// Resize and Upsample.
            resize (core) {
                ops: [
                    /// Resize by per-axis coordinate tables. Inputs: x, the
                    /// table (constant int32). Params:
                    /// [`crate::ops::resize::Params`].
                    Resize = 39,
                ]
                kernels: [
                    /// Nearest-neighbour resize of any element type.
                    ResizeNearest = "resize_nearest",
                    /// Nearest-neighbour resize, row by row (repeated rows
                    /// copied).
                    ResizeNearestOpt = "resize_nearest_opt",
                    /// Interpolating resize (linear, cubic, antialiased), f32.
                    ResizeF32 = "resize_f32",
                    /// Interpolating resize of int8 data, blended in f32
                    /// (dequantized reads, quantized writes).
                    ResizeS8 = "resize_s8",
                    /// f32 interpolating resize, plane by plane.
                    ResizeF32Opt = "resize_f32_opt",
                    /// int8 interpolating resize, plane by plane.
                    ResizeS8Opt = "resize_s8_opt",
                ]
            }
            /// Strided slices.
            slice (core) {
                ops: [
                    /// Strided slice of a runtime tensor (steps may be
                    /// negative). Params: [`crate::ops::slice::Params`].
                    Slice = 36,
                ]
                kernels: [
                    /// Strided slice of any element type.
                    Slice = "slice",
                ]
            }
            /// Padding.
            pad (core) {
                ops: [
                    /// Padding with a constant or from the input (edge,
                    /// reflect, wrap). Params: [`crate::ops::pad::Params`].
                    Pad = 11,
                ]
                kernels: [
                    /// Padding of bytes: int8, uint8 (constant, edge,
                    /// reflect, wrap).
                    PadS8 = "pad_s8",
                    /// Padding of 4-byte words: f32, int32 (constant, edge,
                    /// reflect, wrap).
                    PadF32 = "pad_f32",
                ]
            }
            /// Concatenation.
            concat (core) {
                ops: [
                    /// Concatenation along an axis. Inputs: 1..=8 tensors. Params:
                    /// [`crate::ops::concat::Params`].
                    Concat = 12,
                ]
                kernels: [
                    /// int8 concatenation.
                    ConcatS8 = "concat_s8",
                    /// f32 concatenation.
                    ConcatF32 = "concat_f32",
                ]
            }
            /// Quantization and dequantization.
            quantize (core) {
                ops: [
                    /// f32 → int8/uint8 (`round_half_even(x / scale) + zp`,
                    /// saturated). No params.
                    Quantize = 13,
                    /// int8/uint8/int32 → f32 (`(q - zp) · scale`). No params.
                    Dequantize = 14,
                ]
                kernels: [
                    /// f32 to int8/uint8 quantization.
                    Quantize = "quantize",
                    /// int8/uint8/int32 to f32 dequantization.
                    Dequantize = "dequantize",
                ]
            }
            /// Clamps that could not be fused.
            clamp (core) {
                ops: [
                    /// Clamp (ReLU, ReLU6, Clip) when it could not be fused. Params:
                    /// [`crate::ops::clamp::Params`].
                    Clamp = 15,
                ]
                kernels: [
                    /// int8 clamp.
                    ClampS8 = "clamp_s8",
                    /// f32 clamp.
                    ClampF32 = "clamp_f32",
                ]
            }
            /// Batched matrix products of two run-time tensors.
            matmul (transformer) {
                ops: [
                    /// Batched f32 matrix product over strided views. Inputs a, b.
                    /// Output row-major `[batch, M, N]` (any shape with that many
                    /// elements). Params: [`crate::ops::matmul::Params`].
                    MatMul = 18,
                ]
                kernels: [
                    /// Batched f32 matrix product.
                    MatMul = "matmul_f32",
                ]
            }
            /// Fused attention.
            attention (transformer) {
                ops: [
                    /// Fused f32 attention. Inputs q, k, v, additive mask
                    /// (optional), -, scratch (`Sk + Dv` f32). Params:
                    /// [`crate::ops::attention::Params`].
                    Attention = 19,
                ]
                kernels: [
                    /// Fused f32 attention.
                    Attention = "attention_f32",
                ]
            }
            /// Layer normalization.
            layer_norm (transformer) {
                ops: [
                    /// Layer normalization over the last axis, f32. Inputs x, gamma
                    /// `[D]`, beta `[D]` (optional). Params: [`crate::ops::layer_norm::Params`].
                    LayerNorm = 20,
                ]
                kernels: [
                    /// f32 layer normalization.
                    LayerNorm = "layer_norm_f32",
                ]
            }
            /// Element-wise functions of one tensor: f32 math, and any of
            /// them on int8/uint8 through a 256-entry table.
            unary (core) {
                ops: [
                    /// Element-wise f32 function. Params: [`crate::ops::unary::Params`].
                    Unary = 21,
                    /// Element-wise function of int8 or uint8 data through a
                    /// 256-entry table built by the compiler. Inputs x, table
                    /// (constant, 256 entries of the output's type, indexed by
                    /// the input's bit pattern). No params.
                    Lut = 29,
                ]
                kernels: [
                    /// f32 element-wise functions (activations, math).
                    Unary = "unary_f32",
                    /// int8/uint8 table lookup, reference.
                    Lut8 = "lut_8",
                    /// int8/uint8 table lookup, optimized (Helium gathers,
                    /// NEON `TBL`).
                    Lut8Opt = "lut_8_opt",
                ]
            }
            /// Gathers (embedding lookups).
            gather (transformer) {
                ops: [
                    /// Gather along an axis (embedding lookup). Inputs table,
                    /// indices (i32). Params: [`crate::ops::gather::Params`].
                    Gather = 22,
                ]
                kernels: [
                    /// Embedding lookup.
                    Gather = "gather",
                ]
            }
            /// Fully connected layers on dynamically quantized inputs (the
            /// products of onnxruntime's dynamically quantized transformers
            /// and LSTMs: a core family, as recurrent voice models run on
            /// microcontrollers).
            dynamic_fc (core) {
                ops: [
                    /// Fully connected with dynamic int8 quantization of the f32
                    /// input. Inputs x `[.., K]` f32, w `[N, K]` int8, w_scale `[N or
                    /// 1]` f32, bias `[N]` f32 (optional), weight row sums `[N]`
                    /// i32, scratch. Output f32 `[.., N]`. No params.
                    DynamicFullyConnected = 23,
                ]
                kernels: [
                    /// Dynamically quantized int8 fully connected, reference.
                    DynamicFullyConnected = "fully_connected_dynamic_f32",
                    /// Dynamically quantized int8 fully connected, optimized.
                    DynamicFullyConnectedOpt = "fully_connected_dynamic_f32_opt",
                ]
            }
            /// Reductions over one axis.
            reduce (transformer) {
                ops: [
                    /// Reduction of the middle axis of `[outer, n, inner]`, f32.
                    /// Params: [`crate::ops::reduce::Params`].
                    Reduce = 24,
                ]
                kernels: [
                    /// f32 reductions over one axis.
                    Reduce = "reduce_f32",
                ]
            }
            /// Element type conversion.
            cast (transformer) {
                ops: [
                    /// Element type conversion. Params: [`crate::ops::cast::Params`].
                    Cast = 25,
                ]
                kernels: [
                    /// Element type conversion.
                    Cast = "cast",
                ]
            }
            /// Comparisons and boolean ops.
            compare (transformer) {
                ops: [
                    /// Comparison or boolean op with broadcasting, output u8 0/1.
                    /// Params: [`crate::ops::compare::Params`].
                    Compare = 26,
                ]
                kernels: [
                    /// Element-wise comparison.
                    Compare = "compare",
                ]
            }
            /// Element-wise selection.
            select (transformer) {
                ops: [
                    /// `cond ? a : b` with broadcasting. Inputs cond (u8), a, b. No
                    /// params.
                    Where = 27,
                ]
                kernels: [
                    /// Element-wise selection.
                    Where = "where",
                ]
            }
            /// Broadcast copies.
            expand (transformer) {
                ops: [
                    /// Broadcast copy to the output's shape. No params.
                    Expand = 28,
                ]
                kernels: [
                    /// Broadcast to a larger shape.
                    Expand = "expand",
                ]
            }
        }
    };
}
