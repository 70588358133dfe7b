//! PLACEHOLDER until the tokenizer branch merges: only the settings type the graph embeds.

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerConfig {
    pub lowercase: bool,
    pub strip_accents: bool,
    pub clean_text: bool,
    pub handle_chinese_chars: bool,
    pub unk_token: String,
    pub cls_token: String,
    pub sep_token: String,
    pub pad_token: String,
    pub continuing_subword_prefix: String,
    pub max_input_chars_per_word: usize,
    pub max_length: usize,
}

impl TokenizerConfig {
    pub fn bert_uncased(max_length: usize) -> Self {
        TokenizerConfig {
            lowercase: true,
            strip_accents: true,
            clean_text: true,
            handle_chinese_chars: true,
            unk_token: "[UNK]".into(),
            cls_token: "[CLS]".into(),
            sep_token: "[SEP]".into(),
            pad_token: "[PAD]".into(),
            continuing_subword_prefix: "##".into(),
            max_input_chars_per_word: 100,
            max_length,
        }
    }
}

pub struct Tokenizer;
impl Tokenizer {
    pub fn new(_vocab: Vec<String>, _config: TokenizerConfig) -> crate::Result<Tokenizer> {
        Ok(Tokenizer)
    }
}
