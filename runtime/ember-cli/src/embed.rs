//! `ember embed MODEL --vocab vocab.txt TEXT [TEXT2]`: sentence embeddings
//! from a BERT-style encoder such as all-MiniLM-L6-v2: WordPiece tokens in,
//! a unit-length embedding out (the model's `sentence_embedding` output, or
//! its token states mean-pooled over the real tokens and L2-normalised, as
//! sentence-transformers does).

use anyhow::{bail, Result};
use ember_runtime::{DType, Interpreter, Model, TensorInfo};

use crate::wordpiece::WordPiece;

/// Name of the token-id input.
pub const INPUT_IDS: &str = "input_ids";
/// Name of the attention-mask input.
pub const ATTENTION_MASK: &str = "attention_mask";
/// Name of the (optional) segment input.
pub const TOKEN_TYPE_IDS: &str = "token_type_ids";
/// Name of a pooled, ready-made embedding output.
pub const SENTENCE_EMBEDDING: &str = "sentence_embedding";

/// A graph input or output as the embedding front end sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub dims: Vec<usize>,
}

impl From<&TensorInfo<'_>> for Port {
    fn from(t: &TensorInfo<'_>) -> Self {
        Port {
            name: t.name.to_string(),
            dtype: t.dtype,
            dims: t.dims().to_vec(),
        }
    }
}

/// Which graph input takes what, and the sequence length they share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputPlan {
    /// Index of `input_ids`.
    pub ids: usize,
    /// Index of `attention_mask`.
    pub mask: usize,
    /// Index of `token_type_ids`, if the model has it.
    pub type_ids: Option<usize>,
    /// The fixed sequence length `S` of the `[1, S]` inputs.
    pub seq_len: usize,
}

/// Matches a model's inputs by name: `input_ids` and `attention_mask`
/// (required), `token_type_ids` (optional), all int32 `[1, S]` with the
/// same `S`.
pub fn plan_inputs(inputs: &[Port]) -> Result<InputPlan> {
    let (mut ids, mut mask, mut type_ids) = (None, None, None);
    for (i, p) in inputs.iter().enumerate() {
        let slot = match p.name.as_str() {
            INPUT_IDS => &mut ids,
            ATTENTION_MASK => &mut mask,
            TOKEN_TYPE_IDS => &mut type_ids,
            other => bail!(
                "model input '{other}' is not one of {INPUT_IDS}, {ATTENTION_MASK}, {TOKEN_TYPE_IDS}: not a text-embedding model"
            ),
        };
        if slot.is_some() {
            bail!("the model has two inputs named '{}'", p.name);
        }
        if p.dtype != DType::I32 {
            bail!(
                "model input '{}' is {}; the embedding front end feeds int32 token ids",
                p.name,
                p.dtype.name()
            );
        }
        *slot = Some(i);
    }
    let (Some(ids), Some(mask)) = (ids, mask) else {
        bail!(
            "a text-embedding model needs inputs named {INPUT_IDS} and {ATTENTION_MASK}; this one has [{}]",
            inputs
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let dims = &inputs[ids].dims;
    let seq_len = match dims.as_slice() {
        [1, s] if *s >= 2 => *s,
        _ => bail!(
            "model input '{INPUT_IDS}' has shape {dims:?}; expected [1, S] with S >= 2 (compile with --shape {INPUT_IDS}=1x128 and the same for the other inputs)"
        ),
    };
    for i in [Some(mask), type_ids].into_iter().flatten() {
        if inputs[i].dims != *dims {
            bail!(
                "model input '{}' has shape {:?}, '{INPUT_IDS}' {dims:?}: they must match",
                inputs[i].name,
                inputs[i].dims
            );
        }
    }
    Ok(InputPlan {
        ids,
        mask,
        type_ids,
        seq_len,
    })
}

/// Where the embedding comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputPlan {
    /// A `sentence_embedding` output `[1, D]`, used as it is.
    Sentence {
        /// Output index.
        index: usize,
        /// Embedding dimension `D`.
        dim: usize,
    },
    /// Token states `[1, S, D]`, mean-pooled over the real tokens and
    /// L2-normalised.
    Tokens {
        /// Output index.
        index: usize,
        /// Hidden dimension `D`.
        dim: usize,
    },
}

/// Picks the output to embed with: `sentence_embedding` (f32 `[1, D]`) if
/// the model has it, otherwise an f32 `[1, S, D]` output (preferring one
/// named `last_hidden_state` or `token_embeddings`).
pub fn plan_output(outputs: &[Port], seq_len: usize) -> Result<OutputPlan> {
    if let Some((index, p)) = outputs
        .iter()
        .enumerate()
        .find(|(_, p)| p.name == SENTENCE_EMBEDDING)
    {
        return match (p.dtype, p.dims.as_slice()) {
            (DType::F32, [1, d]) if *d > 0 => Ok(OutputPlan::Sentence { index, dim: *d }),
            (dt, dims) => bail!(
                "model output '{SENTENCE_EMBEDDING}' is {} {dims:?}; expected f32 [1, D]",
                dt.name()
            ),
        };
    }
    let is_states = |p: &Port| {
        p.dtype == DType::F32 && matches!(p.dims.as_slice(), [1, s, d] if *s == seq_len && *d > 0)
    };
    let preferred = |p: &Port| matches!(p.name.as_str(), "last_hidden_state" | "token_embeddings");
    let found = outputs
        .iter()
        .enumerate()
        .filter(|(_, p)| is_states(p))
        .max_by_key(|(i, p)| (preferred(p), std::cmp::Reverse(*i)));
    match found {
        Some((index, p)) => Ok(OutputPlan::Tokens {
            index,
            dim: p.dims[2],
        }),
        None => bail!(
            "no embedding output: expected '{SENTENCE_EMBEDDING}' f32 [1, D] or token states f32 [1, {seq_len}, D]; the model has {}",
            outputs
                .iter()
                .map(|p| format!("'{}' {} {:?}", p.name, p.dtype.name(), p.dims))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The three input rows of one encoded text, each `seq_len` long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInputs {
    /// Token ids, padded with `[PAD]`.
    pub ids: Vec<i32>,
    /// 1 for a real token, 0 for padding.
    pub mask: Vec<i32>,
    /// Segment ids: all 0 (one sentence).
    pub type_ids: Vec<i32>,
}

/// Pads token ids (`[CLS] ... [SEP]`, already at most `seq_len` long) to the
/// model's sequence length.
pub fn token_inputs(ids: &[u32], seq_len: usize, pad_id: u32) -> Result<TokenInputs> {
    if ids.len() > seq_len {
        bail!("{} tokens do not fit a sequence of {seq_len}", ids.len());
    }
    let to_i32 =
        |v: u32| i32::try_from(v).map_err(|_| anyhow::anyhow!("token id {v} is too large"));
    let mut row = ids.iter().map(|&v| to_i32(v)).collect::<Result<Vec<_>>>()?;
    row.resize(seq_len, to_i32(pad_id)?);
    let mut mask = vec![1; ids.len()];
    mask.resize(seq_len, 0);
    Ok(TokenInputs {
        ids: row,
        mask,
        type_ids: vec![0; seq_len],
    })
}

/// Scales `v` to unit length (as `torch.nn.functional.normalize`: a norm
/// below 1e-12 divides by 1e-12).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    let inv = 1.0 / norm.max(1e-12);
    for x in v {
        *x = (*x as f64 * inv) as f32;
    }
}

/// Mean of the token states `hidden` (`[S, D]`, row-major) over the tokens
/// whose `mask` is non-zero, L2-normalised: sentence-transformers' mean
/// pooling followed by its Normalize module.
pub fn mean_pool_normalize(hidden: &[f32], mask: &[i32], dim: usize) -> Result<Vec<f32>> {
    if dim == 0 || hidden.len() != mask.len() * dim {
        bail!(
            "token states of {} values do not make {} rows of {dim}",
            hidden.len(),
            mask.len()
        );
    }
    let mut sum = vec![0f64; dim];
    let mut n = 0f64;
    for (row, &m) in hidden.chunks_exact(dim).zip(mask) {
        if m != 0 {
            n += 1.0;
            for (s, &x) in sum.iter_mut().zip(row) {
                *s += x as f64;
            }
        }
    }
    let n = n.max(1e-9);
    let mut v: Vec<f32> = sum.iter().map(|&s| (s / n) as f32).collect();
    l2_normalize(&mut v);
    Ok(v)
}

/// Cosine similarity of two vectors of the same length (0 if either is
/// zero).
pub fn cosine(a: &[f32], b: &[f32]) -> Result<f32> {
    if a.len() != b.len() {
        bail!(
            "cannot compare embeddings of {} and {} values",
            a.len(),
            b.len()
        );
    }
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    let den = (aa * bb).sqrt();
    Ok(if den > 0.0 { (ab / den) as f32 } else { 0.0 })
}

/// The embedding of one text.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    /// The values (unit length when pooled here).
    pub values: Vec<f32>,
    /// Tokens the model saw, `[CLS]` and `[SEP]` included.
    pub tokens: usize,
    /// Tokens the text had before truncation to the model's sequence
    /// length.
    pub full_tokens: usize,
}

impl Embedding {
    /// Whether the text was cut to fit the model.
    pub fn truncated(&self) -> bool {
        self.full_tokens > self.tokens
    }
}

/// Embeds each text with `model`, tokenized by `vocab`.
pub fn embed(model: &Model<'_>, vocab: &WordPiece, texts: &[String]) -> Result<Vec<Embedding>> {
    let inputs = (0..model.num_inputs())
        .map(|i| model.input_info(i).map(|t| Port::from(&t)))
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = (0..model.num_outputs())
        .map(|i| model.output_info(i).map(|t| Port::from(&t)))
        .collect::<Result<Vec<_>, _>>()?;
    let plan = plan_inputs(&inputs)?;
    let out = plan_output(&outputs, plan.seq_len)?;
    let mut arena = crate::arena_for(model)?;
    let mut it = Interpreter::new(model, arena.bytes_mut())?;
    let mut result = Vec::with_capacity(texts.len());
    for text in texts {
        let enc = vocab.encode(text, plan.seq_len)?;
        let x = token_inputs(&enc.ids, plan.seq_len, vocab.pad_id())?;
        it.input_mut(plan.ids)?.copy_from(&x.ids)?;
        it.input_mut(plan.mask)?.copy_from(&x.mask)?;
        if let Some(t) = plan.type_ids {
            it.input_mut(t)?.copy_from(&x.type_ids)?;
        }
        it.invoke()?;
        let values = match out {
            OutputPlan::Sentence { index, .. } => it.output(index)?.as_f32()?.to_vec(),
            OutputPlan::Tokens { index, dim } => {
                mean_pool_normalize(it.output(index)?.as_f32()?, &x.mask, dim)?
            }
        };
        result.push(Embedding {
            values,
            tokens: enc.ids.len(),
            full_tokens: enc.full_len,
        });
    }
    Ok(result)
}

/// How many values the text report shows.
const SHOWN: usize = 8;

/// The JSON report: `{"embedding": [...]}` for one text (a stable
/// contract), `{"embeddings": [[...], [...]], "cosine": x}` for two.
pub fn json(embs: &[Embedding]) -> Result<String> {
    let list = |e: &Embedding| serde_json::to_string(&e.values);
    match embs {
        [one] => Ok(format!("{{\"embedding\":{}}}", list(one)?)),
        [a, b] => Ok(format!(
            "{{\"embeddings\":[{},{}],\"cosine\":{}}}",
            list(a)?,
            list(b)?,
            serde_json::to_string(&cosine(&a.values, &b.values)?)?
        )),
        _ => bail!("one or two texts, not {}", embs.len()),
    }
}

/// The text report: the dimension and first values for one text, the
/// cosine similarity for two.
pub fn text(embs: &[Embedding]) -> Result<String> {
    match embs {
        [one] => {
            let shown: Vec<String> = one
                .values
                .iter()
                .take(SHOWN)
                .map(|v| format!("{v:.4}"))
                .collect();
            let more = if one.values.len() > SHOWN { " …" } else { "" };
            Ok(format!(
                "embedding of dimension {} ({} tokens): [{}{more}]",
                one.values.len(),
                one.tokens,
                shown.join(", ")
            ))
        }
        [a, b] => Ok(format!("cosine {:.4}", cosine(&a.values, &b.values)?)),
        _ => bail!("one or two texts, not {}", embs.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(name: &str, dtype: DType, dims: &[usize]) -> Port {
        Port {
            name: name.into(),
            dtype,
            dims: dims.to_vec(),
        }
    }

    fn bert_inputs(s: usize) -> Vec<Port> {
        vec![
            port(INPUT_IDS, DType::I32, &[1, s]),
            port(TOKEN_TYPE_IDS, DType::I32, &[1, s]),
            port(ATTENTION_MASK, DType::I32, &[1, s]),
        ]
    }

    fn err<T: std::fmt::Debug>(r: Result<T>) -> String {
        format!("{:#}", r.unwrap_err())
    }

    #[test]
    fn inputs_are_matched_by_name() {
        let plan = plan_inputs(&bert_inputs(128)).unwrap();
        assert_eq!(
            plan,
            InputPlan {
                ids: 0,
                mask: 2,
                type_ids: Some(1),
                seq_len: 128
            }
        );
        let two = [
            port(ATTENTION_MASK, DType::I32, &[1, 8]),
            port(INPUT_IDS, DType::I32, &[1, 8]),
        ];
        let plan = plan_inputs(&two).unwrap();
        assert_eq!((plan.ids, plan.mask, plan.type_ids), (1, 0, None));
    }

    #[test]
    fn unsuitable_inputs_are_clear_errors() {
        let mut wrong_type = bert_inputs(8);
        wrong_type[0].dtype = DType::F32;
        assert!(err(plan_inputs(&wrong_type)).contains("int32 token ids"));
        let mut i8_type = bert_inputs(8);
        i8_type[2].dtype = DType::I8;
        assert!(err(plan_inputs(&i8_type)).contains("attention_mask' is i8"));
        let image = [port("input", DType::I8, &[1, 96, 96, 3])];
        assert!(err(plan_inputs(&image)).contains("not a text-embedding model"));
        let only_ids = [port(INPUT_IDS, DType::I32, &[1, 8])];
        assert!(err(plan_inputs(&only_ids)).contains("needs inputs named"));
        let mut mismatch = bert_inputs(8);
        mismatch[2].dims = vec![1, 9];
        assert!(err(plan_inputs(&mismatch)).contains("must match"));
        let mut batch = bert_inputs(8);
        for p in &mut batch {
            p.dims = vec![2, 8];
        }
        assert!(err(plan_inputs(&batch)).contains("expected [1, S]"));
    }

    #[test]
    fn outputs_prefer_the_sentence_embedding() {
        let outs = [
            port("last_hidden_state", DType::F32, &[1, 8, 384]),
            port(SENTENCE_EMBEDDING, DType::F32, &[1, 384]),
        ];
        assert_eq!(
            plan_output(&outs, 8).unwrap(),
            OutputPlan::Sentence { index: 1, dim: 384 }
        );
        let states = [
            port("other", DType::F32, &[1, 8, 16]),
            port("last_hidden_state", DType::F32, &[1, 8, 384]),
        ];
        let plan = plan_output(&states, 8).unwrap();
        assert_eq!(plan, OutputPlan::Tokens { index: 1, dim: 384 });
        let unnamed = [
            port("a", DType::F32, &[1, 7, 16]),
            port("b", DType::F32, &[1, 8, 32]),
            port("c", DType::F32, &[1, 8, 64]),
        ];
        assert_eq!(
            plan_output(&unnamed, 8).unwrap(),
            OutputPlan::Tokens { index: 1, dim: 32 }
        );
    }

    #[test]
    fn unsuitable_outputs_are_clear_errors() {
        let quantized = [port(SENTENCE_EMBEDDING, DType::I8, &[1, 384])];
        assert!(err(plan_output(&quantized, 8)).contains("expected f32 [1, D]"));
        let classes = [port("logits", DType::F32, &[1, 12])];
        let e = err(plan_output(&classes, 8));
        assert!(
            e.contains("no embedding output") && e.contains("'logits' f32 [1, 12]"),
            "{e}"
        );
        let wrong_len = [port("last_hidden_state", DType::F32, &[1, 16, 384])];
        assert!(plan_output(&wrong_len, 8).is_err());
    }

    #[test]
    fn token_inputs_pad_and_mask() {
        let x = token_inputs(&[101, 7592, 102], 6, 0).unwrap();
        assert_eq!(x.ids, [101, 7592, 102, 0, 0, 0]);
        assert_eq!(x.mask, [1, 1, 1, 0, 0, 0]);
        assert_eq!(x.type_ids, [0; 6]);
        let full = token_inputs(&[1, 2, 3], 3, 0).unwrap();
        assert_eq!(full.mask, [1, 1, 1]);
        assert!(token_inputs(&[1, 2, 3], 2, 0).is_err());
        assert!(token_inputs(&[u32::MAX], 2, 0).is_err());
    }

    #[test]
    fn mean_pooling_ignores_padding_and_normalises() {
        // Three tokens of dimension 2; the third is padding with huge values.
        let hidden = [1.0, 0.0, 3.0, 4.0, 1e6, -1e6];
        let v = mean_pool_normalize(&hidden, &[1, 1, 0], 2).unwrap();
        // Mean (2, 2) → (1/√2, 1/√2).
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!((v[0] - h).abs() < 1e-6 && (v[1] - h).abs() < 1e-6, "{v:?}");
        // No real token: zeros, not NaN.
        let z = mean_pool_normalize(&hidden, &[0, 0, 0], 2).unwrap();
        assert_eq!(z, [0.0, 0.0]);
        assert!(mean_pool_normalize(&hidden, &[1, 1], 2).is_err());
        assert!(mean_pool_normalize(&hidden, &[1, 1, 1], 0).is_err());
    }

    #[test]
    fn normalise_and_cosine() {
        let mut v = [3.0f32, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut z = [0.0f32; 3];
        l2_normalize(&mut z);
        assert_eq!(z, [0.0; 3]);
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]).unwrap() - 0.70710677).abs() < 1e-6);
        assert_eq!(cosine(&[1.0, 2.0], &[-2.0, -4.0]).unwrap(), -1.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]).unwrap(), 0.0);
        assert!(cosine(&[1.0], &[1.0, 2.0]).is_err());
    }

    fn emb(values: &[f32]) -> Embedding {
        Embedding {
            values: values.to_vec(),
            tokens: 3,
            full_tokens: 3,
        }
    }

    #[test]
    fn reports() {
        let one = [emb(&[0.6, 0.8])];
        let v: serde_json::Value = serde_json::from_str(&json(&one).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"embedding": [0.6, 0.8]}));
        assert_eq!(json(&one).unwrap(), r#"{"embedding":[0.6,0.8]}"#);
        assert_eq!(
            text(&one).unwrap(),
            "embedding of dimension 2 (3 tokens): [0.6000, 0.8000]"
        );
        let two = [emb(&[1.0, 0.0]), emb(&[0.0, 1.0])];
        let v: serde_json::Value = serde_json::from_str(&json(&two).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"embeddings": [[1.0, 0.0], [0.0, 1.0]], "cosine": 0.0})
        );
        assert_eq!(text(&two).unwrap(), "cosine 0.0000");
        let long = [emb(&[0.1; 20])];
        assert!(text(&long).unwrap().ends_with("0.1000 …]"));
        assert!(json(&[]).is_err() && text(&[]).is_err());
    }
}
