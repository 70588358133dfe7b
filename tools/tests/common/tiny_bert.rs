//! A small random BERT-layout folder (the real vocabulary, random weights) for the importer's and
//! the fine-tuner's tests.

use std::collections::HashMap;
use std::path::Path;

use super::root;

pub const HIDDEN: usize = 8;
pub const HEADS: usize = 2;
pub const FF: usize = 16;
pub const LAYERS: usize = 2;
pub const POSITIONS: usize = 40;
pub const VOCAB: usize = 30522;

/// A seeded xorshift: the weights only need to be arbitrary and reproducible.
pub struct Rng(pub u64);
impl Rng {
    pub fn f32(&mut self, scale: f32) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 * scale
    }
}

/// Writes config.json, vocab.txt and model.safetensors of a random BERT; returns its weights.
pub fn tiny_bert(dir: &Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let config = serde_json::json!({
        "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "intermediate_size": FF, "max_position_embeddings": POSITIONS, "type_vocab_size": 2,
        "vocab_size": VOCAB, "layer_norm_eps": 1e-12, "hidden_act": "gelu"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(root().join("crate/tests/fixtures/tokenizer/vocab.txt"), dir.join("vocab.txt")).unwrap();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut w = HashMap::new();
    let mut put = |name: &str, shape: Vec<usize>, scale: f32, offset: f32| {
        let n = shape.iter().product();
        w.insert(name.to_string(), (shape, (0..n).map(|_| offset + rng.f32(scale)).collect::<Vec<f32>>()));
    };
    put("embeddings.word_embeddings.weight", vec![VOCAB, HIDDEN], 0.5, 0.0);
    put("embeddings.position_embeddings.weight", vec![POSITIONS, HIDDEN], 0.5, 0.0);
    put("embeddings.token_type_embeddings.weight", vec![2, HIDDEN], 0.5, 0.0);
    put("embeddings.LayerNorm.weight", vec![HIDDEN], 0.3, 1.0);
    put("embeddings.LayerNorm.bias", vec![HIDDEN], 0.3, 0.0);
    for l in 0..LAYERS {
        let p = format!("bert.encoder.layer.{l}");
        for (name, out, inp) in [
            ("attention.self.query", HIDDEN, HIDDEN),
            ("attention.self.key", HIDDEN, HIDDEN),
            ("attention.self.value", HIDDEN, HIDDEN),
            ("attention.output.dense", HIDDEN, HIDDEN),
            ("intermediate.dense", FF, HIDDEN),
            ("output.dense", HIDDEN, FF),
        ] {
            put(&format!("{p}.{name}.weight"), vec![out, inp], 0.6, 0.0);
            put(&format!("{p}.{name}.bias"), vec![out], 0.2, 0.0);
        }
        for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
            put(&format!("{p}.{ln}.weight"), vec![HIDDEN], 0.3, 1.0);
            put(&format!("{p}.{ln}.bias"), vec![HIDDEN], 0.3, 0.0);
        }
    }
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
        w.iter().map(|(k, (s, d))| (k.clone(), s.clone(), d.iter().flat_map(|v| v.to_le_bytes()).collect())).collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(k, s, b)| (k.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(dir.join("model.safetensors"), safetensors::serialize(views, None).unwrap()).unwrap();
    w.into_iter().map(|(k, v)| (k.strip_prefix("bert.").unwrap_or(&k).to_string(), v)).collect()
}

