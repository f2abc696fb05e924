//! BERT WordPiece tokenizer (uncased), as HuggingFace's
//! `BertTokenizer(do_lower_case=True)` used by sentence-transformers models
//! such as all-MiniLM-L6-v2, in its fast variant (`tokenizer.json`), which
//! sentence-transformers runs. Python's slow `BertTokenizer` differs only on
//! rare input: it lowercases a word-final capital sigma to `ς` and drops
//! unassigned code points.
//!
//! The steps are those of `transformers`' `BasicTokenizer` and
//! `WordpieceTokenizer`:
//!
//! 1. special tokens written in the text (`[CLS]`, `[SEP]`, `[MASK]`, ...,
//!    case-sensitive) are kept whole, as HuggingFace's added-token split does;
//! 2. text cleaning: NUL, U+FFFD and control / format / private-use
//!    characters are dropped (unassigned code points are kept, as the fast
//!    tokenizer keeps them), whitespace characters become a space;
//! 3. spaces around CJK ideographs;
//! 4. split on whitespace, then per word: lowercase, strip accents (NFD, then
//!    drop non-spacing marks), split off every punctuation character (ASCII
//!    punctuation and Unicode P* categories);
//! 5. greedy longest-match-first WordPiece with the `##` continuation prefix;
//!    a word longer than [`MAX_WORD_CHARS`] characters, or one that cannot be
//!    covered by vocabulary pieces, becomes `[UNK]`.
//!
//! [`WordPiece::encode`] wraps the ids in `[CLS]` ... `[SEP]` and truncates
//! them to a maximum length.

mod tables;

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use unicode_normalization::UnicodeNormalization;

/// Words longer than this many characters become `[UNK]` (HuggingFace's
/// `max_input_chars_per_word`).
pub const MAX_WORD_CHARS: usize = 100;

/// The special tokens that are recognised when written in the input text,
/// and the ones a vocabulary must have.
const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
const REQUIRED: [&str; 4] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"];

/// A WordPiece vocabulary and the uncased BERT tokenizer over it.
#[derive(Clone, Debug)]
pub struct WordPiece {
    /// Token → id (the line index in `vocab.txt`).
    ids: HashMap<String, u32>,
    pad: u32,
    unk: u32,
    cls: u32,
    sep: u32,
    /// Special tokens present in the vocabulary, with their ids.
    specials: Vec<(&'static str, u32)>,
}

/// A text encoded for a model: `[CLS] tokens [SEP]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoding {
    /// Token ids, `[CLS]` first and `[SEP]` last, at most the requested
    /// maximum length.
    pub ids: Vec<u32>,
    /// How many ids the text had before truncation (with `[CLS]` and
    /// `[SEP]`).
    pub full_len: usize,
}

impl WordPiece {
    /// Loads a `vocab.txt` (UTF-8, one token per line; a token's id is its
    /// line index).
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read vocabulary {}", path.display()))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| anyhow::anyhow!("{}: not UTF-8 text: {e}", path.display()))?;
        Self::from_vocab_text(&text).with_context(|| format!("vocabulary {}", path.display()))
    }

    /// Builds the tokenizer from the text of a `vocab.txt`. A token listed
    /// twice keeps its last id, as HuggingFace's loader does.
    pub fn from_vocab_text(text: &str) -> Result<Self> {
        let mut ids = HashMap::new();
        let mut lines = 0usize;
        for (i, t) in text.lines().enumerate() {
            let id = u32::try_from(i).map_err(|_| anyhow::anyhow!("more than 2^32 tokens"))?;
            ids.insert(t.to_string(), id);
            lines = i + 1;
        }
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|t| !ids.contains_key(*t))
            .collect();
        if !missing.is_empty() {
            bail!(
                "not a BERT WordPiece vocabulary: no {} token ({} lines)",
                missing.join(", "),
                lines
            );
        }
        let id = |t: &str| ids.get(t).copied().unwrap_or_default();
        let specials = SPECIALS
            .iter()
            .filter_map(|&t| ids.get(t).map(|&i| (t, i)))
            .collect();
        Ok(WordPiece {
            pad: id("[PAD]"),
            unk: id("[UNK]"),
            cls: id("[CLS]"),
            sep: id("[SEP]"),
            specials,
            ids,
        })
    }

    /// Id of the padding token `[PAD]`.
    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    /// Token ids of `text`, without `[CLS]` / `[SEP]` and untruncated.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match self.next_special(rest) {
                Some((at, tok, id)) => {
                    self.tokenize_plain(&rest[..at], &mut out);
                    out.push(id);
                    rest = &rest[at + tok.len()..];
                }
                None => {
                    self.tokenize_plain(rest, &mut out);
                    break;
                }
            }
        }
        out
    }

    /// `[CLS]` + the ids of `text` + `[SEP]`, the text's ids cut so that the
    /// whole is at most `max_len` long (which must leave room for the two
    /// special tokens).
    pub fn encode(&self, text: &str, max_len: usize) -> Result<Encoding> {
        if max_len < 2 {
            bail!("a maximum length of {max_len} leaves no room for [CLS] and [SEP]");
        }
        let body = self.tokenize(text);
        let full_len = body.len() + 2;
        let keep = body.len().min(max_len - 2);
        let mut ids = Vec::with_capacity(keep + 2);
        ids.push(self.cls);
        ids.extend_from_slice(&body[..keep]);
        ids.push(self.sep);
        Ok(Encoding { ids, full_len })
    }

    /// The first special token written in `text`: its byte offset, the
    /// token and its id (the longest one at the earliest position).
    fn next_special(&self, text: &str) -> Option<(usize, &'static str, u32)> {
        self.specials
            .iter()
            .filter_map(|&(t, id)| text.find(t).map(|at| (at, t, id)))
            .min_by_key(|&(at, t, _)| (at, std::cmp::Reverse(t.len())))
    }

    /// Basic tokenization and WordPiece of text free of special tokens.
    fn tokenize_plain(&self, text: &str, out: &mut Vec<u32>) {
        let mut buf = String::new();
        for word in basic_tokenize(text) {
            self.wordpiece(&word, &mut buf, out);
        }
    }

    /// Greedy longest-match-first WordPiece of one word.
    fn wordpiece(&self, word: &str, buf: &mut String, out: &mut Vec<u32>) {
        // Byte offsets of the character boundaries, the end included.
        let bounds: Vec<usize> = word
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(word.len()))
            .collect();
        let n_chars = bounds.len() - 1;
        if n_chars > MAX_WORD_CHARS {
            out.push(self.unk);
            return;
        }
        let first = out.len();
        let mut start = 0;
        while start < n_chars {
            let mut found = None;
            for end in (start + 1..=n_chars).rev() {
                buf.clear();
                if start > 0 {
                    buf.push_str("##");
                }
                buf.push_str(&word[bounds[start]..bounds[end]]);
                if let Some(&id) = self.ids.get(buf.as_str()) {
                    found = Some((id, end));
                    break;
                }
            }
            match found {
                Some((id, end)) => {
                    out.push(id);
                    start = end;
                }
                None => {
                    out.truncate(first);
                    out.push(self.unk);
                    return;
                }
            }
        }
    }
}

/// BERT's basic tokenization (uncased): clean, separate CJK ideographs,
/// split on whitespace, lowercase, strip accents, split off punctuation.
pub fn basic_tokenize(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\0' || c == '\u{FFFD}' || is_control(c) {
            continue;
        }
        if is_whitespace(c) {
            cleaned.push(' ');
        } else if is_cjk(c) {
            cleaned.push(' ');
            cleaned.push(c);
            cleaned.push(' ');
        } else {
            cleaned.push(c);
        }
    }
    let mut words = Vec::new();
    for token in cleaned.split_whitespace() {
        // Character by character, as the fast tokenizer sentence-transformers
        // runs (no final-sigma rule: "ΟΔΟΣ" → "οδοσ"; Python's slow
        // BertTokenizer would give "οδος").
        let stripped: String = token
            .chars()
            .flat_map(char::to_lowercase)
            .nfd()
            .filter(|&c| !in_table(tables::NONSPACING_MARK, c))
            .collect();
        let mut word = String::new();
        for c in stripped.chars() {
            if is_punctuation(c) {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                words.push(c.to_string());
            } else {
                word.push(c);
            }
        }
        if !word.is_empty() {
            words.push(word);
        }
    }
    words
}

/// Whether `c` is in a boundary table (see [`tables`]).
fn in_table(table: &[u32], c: char) -> bool {
    table.partition_point(|&b| b <= c as u32) % 2 == 1
}

/// BERT's punctuation: every ASCII non-alphanumeric printable character
/// (`$`, `+`, `^` and the like too) and the Unicode P* categories.
pub fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || (!c.is_ascii() && in_table(tables::PUNCTUATION, c))
}

/// BERT's whitespace: space, tab, newline, carriage return and the Zs
/// category.
fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r') || in_table(tables::SPACE_SEPARATOR, c)
}

/// BERT's control characters (dropped): Cc, Cf and Co, except the tab,
/// newline and carriage return, which count as whitespace.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && in_table(tables::CONTROL, c)
}

/// The CJK ideograph blocks BERT puts spaces around (Chinese characters and
/// the kanji / hanja that share them; not Hiragana, Katakana or Hangul).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B820..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small vocabulary for the edge cases.
    fn tiny() -> WordPiece {
        let vocab = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cafe", "hello", "world", ",", "!", "'",
            "s", "un", "##aff", "##able", "a", "##b", "naive", "中", "国", "$", "5",
        ];
        WordPiece::from_vocab_text(&vocab.join("\n")).unwrap()
    }

    /// The tokens of `text`, as strings.
    fn words(wp: &WordPiece, text: &str) -> Vec<String> {
        wp.tokenize(text)
            .iter()
            .map(|&i| {
                let (t, _) = wp.ids.iter().find(|(_, &v)| v == i).unwrap();
                t.clone()
            })
            .collect()
    }

    #[test]
    fn tables_are_sorted_boundaries() {
        for t in [
            tables::PUNCTUATION,
            tables::NONSPACING_MARK,
            tables::CONTROL,
            tables::SPACE_SEPARATOR,
        ] {
            assert_eq!(t.len() % 2, 0);
            assert!(t.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn character_classes() {
        for c in ['!', '$', '+', '^', '`', '~', '¿', '«', '—', '。', '、', '‘'] {
            assert!(is_punctuation(c), "{c:?}");
        }
        for c in ['a', 'é', '中', ' ', '€', '1'] {
            assert!(!is_punctuation(c), "{c:?}");
        }
        for c in [
            '\u{0}', '\u{7}', '\u{200B}', '\u{FEFF}', '\u{AD}', '\u{E000}',
        ] {
            assert!(is_control(c), "{c:?}");
        }
        for c in ['\t', '\n', '\r', 'a', '\u{378}'] {
            assert!(!is_control(c), "{c:?}");
        }
        for c in [' ', '\u{A0}', '\u{3000}', '\u{2009}', '\t'] {
            assert!(is_whitespace(c), "{c:?}");
        }
        assert!(in_table(tables::NONSPACING_MARK, '\u{301}'));
        assert!(!in_table(tables::NONSPACING_MARK, 'e'));
    }

    #[test]
    fn accents_are_stripped_and_text_lowercased() {
        assert_eq!(basic_tokenize("Café"), ["cafe"]);
        assert_eq!(basic_tokenize("CAFE\u{301}"), ["cafe"]);
        assert_eq!(basic_tokenize("Naïve ÀÉÎÕÜ"), ["naive", "aeiou"]);
        assert_eq!(basic_tokenize("ΟΔΟΣ İ"), ["οδοσ", "i"]);
        let wp = tiny();
        assert_eq!(words(&wp, "Café"), ["cafe"]);
        assert_eq!(words(&wp, "NAÏVE"), ["naive"]);
    }

    #[test]
    fn punctuation_is_split_off() {
        assert_eq!(
            basic_tokenize("Hello, world!! It's $5.00"),
            ["hello", ",", "world", "!", "!", "it", "'", "s", "$", "5", ".", "00"]
        );
        assert_eq!(basic_tokenize("a—b¿c?"), ["a", "—", "b", "¿", "c", "?"]);
        let wp = tiny();
        assert_eq!(words(&wp, "hello,world!"), ["hello", ",", "world", "!"]);
    }

    #[test]
    fn cleaning_and_cjk() {
        assert_eq!(
            basic_tokenize("he\u{0}llo\u{200B}\u{FFFD}\tworld\u{A0}x"),
            ["hello", "world", "x"]
        );
        assert_eq!(basic_tokenize("中国abc"), ["中", "国", "abc"]);
        assert!(basic_tokenize(" \n\t ").is_empty());
        assert!(basic_tokenize("\u{301}").is_empty());
        let wp = tiny();
        assert_eq!(words(&wp, "中国"), ["中", "国"]);
    }

    #[test]
    fn wordpiece_pieces_and_unknown_words() {
        let wp = tiny();
        assert_eq!(words(&wp, "unaffable"), ["un", "##aff", "##able"]);
        assert_eq!(words(&wp, "abbb"), ["a", "##b", "##b", "##b"]);
        // No piece covers "q": the whole word is unknown, not just its tail.
        assert_eq!(words(&wp, "unaffq hello"), ["[UNK]", "hello"]);
        assert_eq!(words(&wp, "xyz"), ["[UNK]"]);
        let long = "a".to_string() + &"b".repeat(MAX_WORD_CHARS);
        assert_eq!(words(&wp, &long), ["[UNK]"]);
        let just = "a".to_string() + &"b".repeat(MAX_WORD_CHARS - 1);
        assert_eq!(wp.tokenize(&just).len(), MAX_WORD_CHARS);
    }

    #[test]
    fn special_tokens_in_text_are_kept() {
        let wp = tiny();
        assert_eq!(
            words(&wp, "hello [MASK] world[SEP]"),
            ["hello", "[MASK]", "world", "[SEP]"]
        );
        // Case-sensitive, as HuggingFace's added tokens.
        assert_eq!(words(&wp, "[mask]"), ["[UNK]", "[UNK]", "[UNK]"]);
    }

    #[test]
    fn encode_adds_cls_sep_and_truncates() {
        let wp = tiny();
        let e = wp.encode("hello world!", 16).unwrap();
        assert_eq!(e.ids, [2, 6, 7, 9, 3]);
        assert!(e.full_len <= e.ids.len());
        let e = wp.encode("hello world!", 4).unwrap();
        assert_eq!(e.ids, [2, 6, 7, 3]);
        assert_eq!(e.full_len, 5);
        assert!(e.full_len > e.ids.len());
        let e = wp.encode("", 2).unwrap();
        assert_eq!(e.ids, [2, 3]);
        let e = wp.encode("hello", 2).unwrap();
        assert_eq!(e.ids, [2, 3]);
        assert!(e.full_len > e.ids.len());
        assert!(wp.encode("hello", 1).is_err());
    }

    #[test]
    fn bad_vocabularies_are_errors() {
        let e = WordPiece::from_vocab_text("[PAD]\n[UNK]\nhello\n").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("[CLS]") && msg.contains("[SEP]"), "{msg}");
        assert!(WordPiece::from_vocab_text("").is_err());
        let e = WordPiece::from_file(Path::new("/nonexistent/vocab.txt")).unwrap_err();
        assert!(format!("{e:#}").contains("cannot read vocabulary"), "{e:#}");
        // CRLF line ends and a duplicate (the last id wins).
        let wp =
            WordPiece::from_vocab_text("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nx\r\nx\r\n").unwrap();
        assert_eq!(wp.ids.len(), 5);
        assert_eq!(wp.ids.get("x"), Some(&5));
        assert_eq!(wp.pad_id(), 0);
    }

    /// Every test sentence of all-MiniLM-L6-v2 tokenizes to exactly the ids
    /// HuggingFace's tokenizer produced (rows padded with [PAD] where the
    /// attention mask is 0).
    #[test]
    fn minilm_test_sentences_match_huggingface() {
        use ndarray::Array2;
        use ndarray_npy::NpzReader;

        let dir = ember_tests::shared_dir().join("models/transformers/minilm");
        let wp = WordPiece::from_file(&dir.join("vocab.txt")).unwrap();
        assert_eq!(wp.ids.len(), 30522);
        let index: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("minilm_testvectors.json")).unwrap(),
        )
        .unwrap();
        let sentences: Vec<&str> = index["sentences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        let mut npz =
            NpzReader::new(std::fs::File::open(dir.join("minilm_testvectors.npz")).unwrap())
                .unwrap();
        let ids: Array2<i64> = npz.by_name("input_ids.npy").unwrap();
        let mask: Array2<i64> = npz.by_name("attention_mask.npy").unwrap();
        assert_eq!(sentences.len(), 14);
        assert_eq!(ids.nrows(), sentences.len());
        let width = ids.ncols();
        for (r, s) in sentences.iter().enumerate() {
            let e = wp.encode(s, width).unwrap();
            assert!(e.full_len <= e.ids.len(), "{s}");
            let mut got: Vec<i64> = e.ids.iter().map(|&i| i as i64).collect();
            got.resize(width, wp.pad_id() as i64);
            let want: Vec<i64> = ids.row(r).to_vec();
            assert_eq!(got, want, "row {r}: {s}");
            let real = mask.row(r).iter().filter(|&&m| m == 1).count();
            assert_eq!(e.ids.len(), real, "row {r}: {s}");
        }
    }
}
