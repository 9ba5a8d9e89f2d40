//! A small, safe reader of a GGUF file's header, to vet a model before the
//! LLM engine loads it.
//!
//! mistral.rs panics on a GGUF architecture it does not know (e.g. `gemma3`)
//! and a model without a chat template cannot take chat prompts, so
//! [`check_model`] reads the header first and refuses both with a clear
//! message. Only the header is read (magic, version, counts and the metadata
//! key/value pairs); the tensor data that follows, 100s of MB, is never
//! touched. Bad input never panics and never makes it allocate more than a
//! few bounded buffers: string and key lengths are capped, values that are
//! not kept are skipped without being stored, array nesting is capped, and a
//! truncated or garbage file gives a [`GgufError`].
//!
//! Format (little-endian, versions 2 and 3): `"GGUF"`, `u32` version, `u64`
//! tensor count, `u64` metadata count, then per pair a string key, a `u32`
//! value type and the value; a string is a `u64` length and UTF-8 bytes, an
//! array a `u32` element type, a `u64` count and the elements.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// GGUF architectures (`general.architecture`) that mistral.rs 0.8.1 loads.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &[
    "llama",
    "mistral3",
    "phi2",
    "phi3",
    "starcoder2",
    "qwen2",
    "qwen3",
    "qwen3moe",
];

/// Longest metadata key accepted, in bytes (the GGUF spec's limit).
pub const MAX_KEY_LEN: u64 = 65_535;
/// Longest string value kept (`general.architecture`, `general.name`).
pub const MAX_KEPT_STRING_LEN: u64 = 64 * 1024;
/// Deepest nesting of arrays accepted.
pub const MAX_ARRAY_DEPTH: u32 = 4;
/// Most header bytes read before giving up (a real model's metadata, its
/// vocabulary included, is a few MB).
pub const MAX_HEADER_BYTES: u64 = 256 * 1024 * 1024;

const MAGIC: &[u8; 4] = b"GGUF";
const KEY_ARCHITECTURE: &str = "general.architecture";
const KEY_NAME: &str = "general.name";
const KEY_CHAT_TEMPLATE: &str = "tokenizer.chat_template";
const SUFFIX_CONTEXT_LENGTH: &str = ".context_length";
/// `*.context_length` keys remembered until the architecture is known.
const MAX_CONTEXT_LENGTH_KEYS: usize = 16;

/// What a GGUF header says about the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufInfo {
    /// GGUF format version (2 or 3).
    pub version: u32,
    /// Number of tensors in the file.
    pub tensor_count: u64,
    /// Number of metadata key/value pairs.
    pub metadata_count: u64,
    /// `general.architecture`, e.g. `llama`.
    pub architecture: String,
    /// `general.name`, when present.
    pub name: Option<String>,
    /// Whether `tokenizer.chat_template` is present and non-empty.
    pub has_chat_template: bool,
    /// `<architecture>.context_length`, when present.
    pub context_length: Option<u64>,
}

/// Why a GGUF header could not be read, or the model is refused.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened.
    #[error("{path}: {source}")]
    Open {
        /// The model file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Reading failed (other than by reaching the end).
    #[error("read error at byte {offset}: {source}")]
    Read {
        /// Where.
        offset: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// The file ends inside the header.
    #[error("truncated GGUF header: the file ends at byte {offset} while reading {what}")]
    Truncated {
        /// Bytes read before the end.
        offset: u64,
        /// What was being read.
        what: &'static str,
    },
    /// Not a GGUF file.
    #[error("not a GGUF file (magic {found:02x?}, expected \"GGUF\")")]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A GGUF version other than 2 and 3.
    #[error("unsupported GGUF version {0} (2 and 3 are read)")]
    UnsupportedVersion(u32),
    /// A value type id outside the spec.
    #[error("metadata {key:?}: unknown value type {type_id}")]
    BadValueType {
        /// The key being read.
        key: String,
        /// The type id found.
        type_id: u32,
    },
    /// A length field beyond its cap.
    #[error("metadata {key:?}: {what} length {len} exceeds the limit {max}")]
    TooLong {
        /// The key being read (empty while reading the key itself).
        key: String,
        /// What has the length.
        what: &'static str,
        /// The length found.
        len: u64,
        /// The cap.
        max: u64,
    },
    /// Arrays nested deeper than [`MAX_ARRAY_DEPTH`].
    #[error("metadata {key:?}: arrays nested deeper than {MAX_ARRAY_DEPTH}")]
    TooDeep {
        /// The key being read.
        key: String,
    },
    /// The header is larger than [`MAX_HEADER_BYTES`].
    #[error("GGUF metadata larger than {MAX_HEADER_BYTES} bytes")]
    HeaderTooLarge,
    /// A string that is not UTF-8 where text is required.
    #[error("metadata {key:?}: {what} is not UTF-8")]
    NotUtf8 {
        /// The key being read (empty for the key itself).
        key: String,
        /// What was being read.
        what: &'static str,
    },
    /// A known key with a value of the wrong type.
    #[error("metadata {key:?} has value type {type_id}, expected a {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// The type id found.
        type_id: u32,
        /// The type wanted.
        expected: &'static str,
    },
    /// No `general.architecture` key.
    #[error("GGUF metadata has no general.architecture")]
    MissingArchitecture,
    /// An architecture mistral.rs cannot load (it would panic on it).
    #[error(
        "GGUF architecture {architecture:?} is not supported by the LLM engine \
         (mistral.rs loads: {}); pick a model of one of those architectures",
        SUPPORTED_ARCHITECTURES.join(", ")
    )]
    UnsupportedArchitecture {
        /// `general.architecture`.
        architecture: String,
    },
    /// No `tokenizer.chat_template`: a base model, not a chat one.
    #[error(
        "the GGUF model has no tokenizer.chat_template (a base model?): \
         summaries need an instruct/chat model"
    )]
    NoChatTemplate,
}

/// Reads the header of the GGUF file at `path` and checks that the LLM
/// engine can load it: a supported architecture and a chat template.
pub fn check_model(path: &Path) -> Result<GgufInfo, GgufError> {
    let info = read_file(path)?;
    check_info(&info)?;
    Ok(info)
}

/// The checks of [`check_model`] on an already read header.
pub fn check_info(info: &GgufInfo) -> Result<(), GgufError> {
    if !SUPPORTED_ARCHITECTURES.contains(&info.architecture.as_str()) {
        return Err(GgufError::UnsupportedArchitecture {
            architecture: info.architecture.clone(),
        });
    }
    if !info.has_chat_template {
        return Err(GgufError::NoChatTemplate);
    }
    Ok(())
}

/// Reads the header of the GGUF file at `path` (not the tensors).
pub fn read_file(path: &Path) -> Result<GgufInfo, GgufError> {
    let file = File::open(path).map_err(|source| GgufError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    read_header(BufReader::with_capacity(64 * 1024, file))
}

/// Reads a GGUF header from `input`, stopping after the metadata.
pub fn read_header<R: Read>(input: R) -> Result<GgufInfo, GgufError> {
    let mut r = Reader {
        inner: input,
        offset: 0,
    };
    let mut magic = [0u8; 4];
    r.fill(&mut magic, "the magic")?;
    if &magic != MAGIC {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = r.u32("the version")?;
    if version != 2 && version != 3 {
        return Err(GgufError::UnsupportedVersion(version));
    }
    let tensor_count = r.u64("the tensor count")?;
    let metadata_count = r.u64("the metadata count")?;

    let mut architecture = None;
    let mut name = None;
    let mut has_chat_template = false;
    let mut context_lengths: Vec<(String, u64)> = Vec::new();

    // Each pair takes at least 12 bytes, so a huge count ends at the end of
    // the file (Truncated) or at MAX_HEADER_BYTES, not in a long loop.
    for _ in 0..metadata_count {
        let key = r.key()?;
        let type_id = r.u32("a value type")?;
        match key.as_str() {
            KEY_ARCHITECTURE => architecture = Some(r.kept_string(&key, type_id)?),
            KEY_NAME => name = Some(r.kept_string(&key, type_id)?),
            KEY_CHAT_TEMPLATE => {
                if type_id != TYPE_STRING {
                    return Err(wrong_type(&key, type_id, "string"));
                }
                let len = r.u64("a string length")?;
                r.skip(len, "the chat template")?;
                has_chat_template = len > 0;
            }
            k if k.ends_with(SUFFIX_CONTEXT_LENGTH)
                && context_lengths.len() < MAX_CONTEXT_LENGTH_KEYS =>
            {
                if let Some(v) = r.integer(&key, type_id)? {
                    context_lengths.push((key, v));
                }
            }
            _ => r.skip_value(&key, type_id, 0)?,
        }
    }

    let architecture = architecture.ok_or(GgufError::MissingArchitecture)?;
    let want = format!("{architecture}{SUFFIX_CONTEXT_LENGTH}");
    let context_length = context_lengths
        .into_iter()
        .find(|(k, _)| *k == want)
        .map(|(_, v)| v);
    Ok(GgufInfo {
        version,
        tensor_count,
        metadata_count,
        architecture,
        name,
        has_chat_template,
        context_length,
    })
}

const TYPE_UINT8: u32 = 0;
const TYPE_INT8: u32 = 1;
const TYPE_UINT16: u32 = 2;
const TYPE_INT16: u32 = 3;
const TYPE_UINT32: u32 = 4;
const TYPE_INT32: u32 = 5;
const TYPE_FLOAT32: u32 = 6;
const TYPE_BOOL: u32 = 7;
const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;
const TYPE_UINT64: u32 = 10;
const TYPE_INT64: u32 = 11;
const TYPE_FLOAT64: u32 = 12;

/// Size in bytes of a fixed-size value type; `None` for string and array.
fn fixed_size(type_id: u32) -> Option<u64> {
    match type_id {
        TYPE_UINT8 | TYPE_INT8 | TYPE_BOOL => Some(1),
        TYPE_UINT16 | TYPE_INT16 => Some(2),
        TYPE_UINT32 | TYPE_INT32 | TYPE_FLOAT32 => Some(4),
        TYPE_UINT64 | TYPE_INT64 | TYPE_FLOAT64 => Some(8),
        _ => None,
    }
}

fn wrong_type(key: &str, type_id: u32, expected: &'static str) -> GgufError {
    GgufError::WrongType {
        key: key.to_owned(),
        type_id,
        expected,
    }
}

/// A byte reader that counts what it read and stops at [`MAX_HEADER_BYTES`].
struct Reader<R> {
    inner: R,
    offset: u64,
}

impl<R: Read> Reader<R> {
    fn fill(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), GgufError> {
        let len = buf.len() as u64;
        if self.offset.saturating_add(len) > MAX_HEADER_BYTES {
            return Err(GgufError::HeaderTooLarge);
        }
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.offset += len;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(GgufError::Truncated {
                offset: self.offset,
                what,
            }),
            Err(source) => Err(GgufError::Read {
                offset: self.offset,
                source,
            }),
        }
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
        let mut b = [0u8; 4];
        self.fill(&mut b, what)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
        let mut b = [0u8; 8];
        self.fill(&mut b, what)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads `len` bytes (at most `max`) into a String.
    fn string_of_len(
        &mut self,
        len: u64,
        max: u64,
        key: &str,
        what: &'static str,
    ) -> Result<String, GgufError> {
        if len > max {
            return Err(GgufError::TooLong {
                key: key.to_owned(),
                what,
                len,
                max,
            });
        }
        // len <= max (64 KiB): a bounded allocation.
        let mut buf = vec![0u8; len as usize];
        self.fill(&mut buf, what)?;
        String::from_utf8(buf).map_err(|_| GgufError::NotUtf8 {
            key: key.to_owned(),
            what,
        })
    }

    fn key(&mut self) -> Result<String, GgufError> {
        let len = self.u64("a key length")?;
        self.string_of_len(len, MAX_KEY_LEN, "", "key")
    }

    /// A string value that is kept (architecture, name).
    fn kept_string(&mut self, key: &str, type_id: u32) -> Result<String, GgufError> {
        if type_id != TYPE_STRING {
            return Err(wrong_type(key, type_id, "string"));
        }
        let len = self.u64("a string length")?;
        self.string_of_len(len, MAX_KEPT_STRING_LEN, key, "string value")
    }

    /// An unsigned or signed integer value as u64 (`None` if negative or
    /// not an integer type: the value is then skipped).
    fn integer(&mut self, key: &str, type_id: u32) -> Result<Option<u64>, GgufError> {
        Ok(match type_id {
            TYPE_UINT32 => Some(u64::from(self.u32("an integer")?)),
            TYPE_INT32 => u64::try_from(self.u32("an integer")? as i32).ok(),
            TYPE_UINT64 => Some(self.u64("an integer")?),
            TYPE_INT64 => u64::try_from(self.u64("an integer")? as i64).ok(),
            _ => {
                self.skip_value(key, type_id, 0)?;
                None
            }
        })
    }

    /// Reads past `n` bytes without keeping them.
    fn skip(&mut self, n: u64, what: &'static str) -> Result<(), GgufError> {
        if self.offset.saturating_add(n) > MAX_HEADER_BYTES {
            return Err(GgufError::HeaderTooLarge);
        }
        let copied =
            io::copy(&mut (&mut self.inner).take(n), &mut io::sink()).map_err(|source| {
                GgufError::Read {
                    offset: self.offset,
                    source,
                }
            })?;
        self.offset += copied;
        if copied < n {
            return Err(GgufError::Truncated {
                offset: self.offset,
                what,
            });
        }
        Ok(())
    }

    /// Reads past one value of type `type_id` without keeping it.
    fn skip_value(&mut self, key: &str, type_id: u32, depth: u32) -> Result<(), GgufError> {
        if let Some(size) = fixed_size(type_id) {
            return self.skip(size, "a value");
        }
        match type_id {
            TYPE_STRING => {
                let len = self.u64("a string length")?;
                self.skip(len, "a string value")
            }
            TYPE_ARRAY => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::TooDeep {
                        key: key.to_owned(),
                    });
                }
                let elem = self.u32("an array element type")?;
                let count = self.u64("an array length")?;
                if let Some(size) = fixed_size(elem) {
                    // An overflowing product is past any real file.
                    let bytes = count.checked_mul(size).ok_or(GgufError::HeaderTooLarge)?;
                    return self.skip(bytes, "an array");
                }
                if elem != TYPE_STRING && elem != TYPE_ARRAY {
                    return Err(GgufError::BadValueType {
                        key: key.to_owned(),
                        type_id: elem,
                    });
                }
                // Each element reads at least 8 bytes: a huge count stops at
                // the end of the file or at MAX_HEADER_BYTES.
                for _ in 0..count {
                    self.skip_value(key, elem, depth + 1)?;
                }
                Ok(())
            }
            _ => Err(GgufError::BadValueType {
                key: key.to_owned(),
                type_id,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds GGUF headers byte by byte.
    struct Builder {
        bytes: Vec<u8>,
    }

    impl Builder {
        fn new(version: u32, tensors: u64, kvs: u64) -> Self {
            let mut bytes = b"GGUF".to_vec();
            bytes.extend_from_slice(&version.to_le_bytes());
            bytes.extend_from_slice(&tensors.to_le_bytes());
            bytes.extend_from_slice(&kvs.to_le_bytes());
            Builder { bytes }
        }
        fn raw_str(&mut self, s: &str) -> &mut Self {
            self.bytes
                .extend_from_slice(&(s.len() as u64).to_le_bytes());
            self.bytes.extend_from_slice(s.as_bytes());
            self
        }
        fn ty(&mut self, t: u32) -> &mut Self {
            self.bytes.extend_from_slice(&t.to_le_bytes());
            self
        }
        fn str_kv(&mut self, k: &str, v: &str) -> &mut Self {
            self.raw_str(k).ty(TYPE_STRING).raw_str(v)
        }
        fn u32_kv(&mut self, k: &str, v: u32) -> &mut Self {
            self.raw_str(k).ty(TYPE_UINT32);
            self.bytes.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn f32_kv(&mut self, k: &str, v: f32) -> &mut Self {
            self.raw_str(k).ty(TYPE_FLOAT32);
            self.bytes.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn bool_kv(&mut self, k: &str, v: bool) -> &mut Self {
            self.raw_str(k).ty(TYPE_BOOL);
            self.bytes.push(u8::from(v));
            self
        }
        fn str_array_kv(&mut self, k: &str, items: &[&str]) -> &mut Self {
            self.raw_str(k).ty(TYPE_ARRAY).ty(TYPE_STRING);
            self.bytes
                .extend_from_slice(&(items.len() as u64).to_le_bytes());
            for s in items {
                self.raw_str(s);
            }
            self
        }
        fn i32_array_kv(&mut self, k: &str, items: &[i32]) -> &mut Self {
            self.raw_str(k).ty(TYPE_ARRAY).ty(TYPE_INT32);
            self.bytes
                .extend_from_slice(&(items.len() as u64).to_le_bytes());
            for v in items {
                self.bytes.extend_from_slice(&v.to_le_bytes());
            }
            self
        }
        fn done(&self) -> Vec<u8> {
            self.bytes.clone()
        }
    }

    /// A header like SmolLM2's, followed by fake tensor bytes.
    fn good(version: u32) -> Vec<u8> {
        let mut b = Builder::new(version, 272, 9);
        b.str_kv("general.architecture", "llama")
            .str_kv("general.name", "Smollm2 135M")
            .u32_kv("llama.context_length", 8192)
            .f32_kv("llama.rope.freq_base", 100000.0)
            .bool_kv("tokenizer.ggml.add_bos_token", false)
            .str_array_kv("tokenizer.ggml.tokens", &["<|endoftext|>", "a", "b"])
            .i32_array_kv("tokenizer.ggml.token_type", &[3, 1, 1])
            .str_kv(
                "tokenizer.chat_template",
                "{% for m in messages %}{% endfor %}",
            )
            .u32_kv("general.quantization_version", 2);
        let mut bytes = b.done();
        bytes.extend_from_slice(&[0xAB; 1000]);
        bytes
    }

    #[test]
    fn reads_a_good_header_v3_and_v2() {
        for version in [2, 3] {
            let info = read_header(&good(version)[..]).expect("good header");
            assert_eq!(
                info,
                GgufInfo {
                    version,
                    tensor_count: 272,
                    metadata_count: 9,
                    architecture: "llama".into(),
                    name: Some("Smollm2 135M".into()),
                    has_chat_template: true,
                    context_length: Some(8192),
                }
            );
            check_info(&info).expect("supported");
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = good(3);
        let header_len = bytes.len() - 1000;
        for cut in 0..header_len {
            match read_header(&bytes[..cut]) {
                Err(GgufError::Truncated { offset, .. }) => assert!(offset <= cut as u64),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn wrong_magic_and_version() {
        let mut bytes = good(3);
        bytes[..4].copy_from_slice(b"GGML");
        assert!(matches!(
            read_header(&bytes[..]),
            Err(GgufError::BadMagic { found }) if &found == b"GGML"
        ));
        let bytes = good(1);
        assert!(matches!(
            read_header(&bytes[..]),
            Err(GgufError::UnsupportedVersion(1))
        ));
        assert!(matches!(
            read_header(&b"\x7fELF\x02\x01\x01"[..]),
            Err(GgufError::BadMagic { .. })
        ));
    }

    #[test]
    fn huge_lengths_are_refused_without_allocating() {
        // A key claiming u64::MAX bytes.
        let mut b = Builder::new(3, 0, 1);
        b.bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            read_header(&b.done()[..]),
            Err(GgufError::TooLong { what: "key", .. })
        ));

        // An architecture string claiming 1 TB.
        let mut b = Builder::new(3, 0, 1);
        b.raw_str("general.architecture").ty(TYPE_STRING);
        b.bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(
            read_header(&b.done()[..]),
            Err(GgufError::TooLong { .. })
        ));

        // A skipped string claiming u64::MAX bytes: skipped, so the reader
        // stops at the cap on header bytes, not at an allocation.
        let mut b = Builder::new(3, 0, 1);
        b.raw_str("tokenizer.chat_template").ty(TYPE_STRING);
        b.bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            read_header(&b.done()[..]),
            Err(GgufError::HeaderTooLarge)
        ));

        // An array of u64::MAX u64s (the byte count overflows).
        let mut b = Builder::new(3, 0, 1);
        b.raw_str("x").ty(TYPE_ARRAY).ty(TYPE_UINT64);
        b.bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            read_header(&b.done()[..]),
            Err(GgufError::HeaderTooLarge)
        ));

        // An array of u64::MAX strings ends at the end of the input.
        let mut b = Builder::new(3, 0, 1);
        b.raw_str("x").ty(TYPE_ARRAY).ty(TYPE_STRING);
        b.bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        b.raw_str("a").raw_str("b");
        assert!(matches!(
            read_header(&b.done()[..]),
            Err(GgufError::Truncated { .. })
        ));

        // A metadata count of u64::MAX ends at the end of the input.
        let mut b = Builder::new(3, u64::MAX, u64::MAX);
        b.str_kv("general.architecture", "llama");
        assert!(matches!(
            read_header(&b.done()[..]),
            Err(GgufError::Truncated { .. })
        ));
    }

    #[test]
    fn deep_arrays_and_bad_types() {
        let mut b = Builder::new(3, 0, 1);
        b.raw_str("x").ty(TYPE_ARRAY);
        for _ in 0..10 {
            b.ty(TYPE_ARRAY);
            b.bytes.extend_from_slice(&1u64.to_le_bytes());
        }
        assert!(matches!(
            read_header(&b.done()[..]),
            Err(GgufError::TooDeep { .. })
        ));

        let mut b = Builder::new(3, 0, 1);
        b.raw_str("x").ty(13);
        assert!(matches!(
            read_header(&b.done()[..]),
            Err(GgufError::BadValueType { type_id: 13, .. })
        ));

        let mut b = Builder::new(3, 0, 1);
        b.u32_kv("general.architecture", 7);
        assert!(matches!(
            read_header(&b.done()[..]),
            Err(GgufError::WrongType { .. })
        ));

        let mut b = Builder::new(3, 0, 1);
        b.raw_str("general.architecture")
            .ty(TYPE_STRING)
            .raw_str("");
        b.bytes.truncate(b.bytes.len() - 8);
        b.bytes.extend_from_slice(&2u64.to_le_bytes());
        b.bytes.extend_from_slice(&[0xff, 0xfe]);
        assert!(matches!(
            read_header(&b.done()[..]),
            Err(GgufError::NotUtf8 { .. })
        ));
    }

    #[test]
    fn check_refuses_unsupported_architectures_and_base_models() {
        let mut b = Builder::new(3, 0, 2);
        b.str_kv("general.architecture", "gemma3")
            .str_kv("tokenizer.chat_template", "x");
        let info = read_header(&b.done()[..]).expect("header");
        let err = check_info(&info).expect_err("gemma3");
        let msg = err.to_string();
        assert!(msg.contains("gemma3") && msg.contains("llama"), "{msg}");

        let mut b = Builder::new(3, 0, 2);
        b.str_kv("general.architecture", "qwen3")
            .str_kv("tokenizer.chat_template", "");
        let info = read_header(&b.done()[..]).expect("header");
        assert!(!info.has_chat_template);
        assert!(info.name.is_none() && info.context_length.is_none());
        assert!(matches!(check_info(&info), Err(GgufError::NoChatTemplate)));

        let b = Builder::new(3, 0, 0);
        assert!(matches!(
            read_header(&b.done()[..]),
            Err(GgufError::MissingArchitecture)
        ));
    }

    #[test]
    fn check_model_on_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.gguf");
        std::fs::write(&path, good(3)).expect("write");
        assert_eq!(check_model(&path).expect("ok").architecture, "llama");
        let missing = dir.path().join("absent.gguf");
        let err = check_model(&missing).expect_err("absent");
        assert!(matches!(err, GgufError::Open { .. }));
        assert!(err.to_string().contains("absent.gguf"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_header(&bytes[..]);
        }

        #[test]
        fn arbitrary_bytes_after_a_valid_prefix_never_panic(
            cut in 0usize..200,
            tail in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let mut bytes = good(3);
            bytes.truncate(cut.min(bytes.len()));
            bytes.extend_from_slice(&tail);
            let _ = read_header(&bytes[..]);
        }
    }
}
