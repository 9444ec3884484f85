//! Where rl's tests find the models and the Python they need, each located once. `make test` fetches them and
//! passes their paths (`RL_SMOLLM2_GGUF`, `RL_MINILM_DIR`); without those variables the tests
//! look where the fetch scripts put them, `${RL_CACHE:-~/.cache/rl}/models/`. A missing fixture
//! fails the test with the command that fetches it: a test never passes by skipping.
//! [`bench`] holds the options every bench binary shares.

use std::path::PathBuf;

pub mod bench;

/// `${RL_CACHE:-~/.cache/rl}`: the torch venv and the models live there.
fn cache_dir() -> PathBuf {
    std::env::var_os("RL_CACHE").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/rl"),
        PathBuf::from,
    )
}

/// Where `scripts/fetch-*.sh` put the models.
pub fn models_dir() -> PathBuf {
    cache_dir().join("models")
}

/// `$var` when set, else `default`; the result must pass `present`, or the test fails with
/// `fetch` as the way to get it.
fn locate(
    var: Option<&str>,
    default: PathBuf,
    present: fn(&PathBuf) -> bool,
    what: &str,
    fetch: &str,
) -> PathBuf {
    let path = var
        .and_then(std::env::var_os)
        .map_or(default, PathBuf::from);
    let or_set = var.map_or(String::new(), |v| format!(", or set {v} to where it is"));
    assert!(
        present(&path),
        "no {what} at {}: run {fetch} (`make test` does){or_set}",
        path.display()
    );
    path
}

/// The SmolLM2-135M-Instruct GGUF (`RL_SMOLLM2_GGUF`).
pub fn smollm2_gguf() -> PathBuf {
    locate(
        Some("RL_SMOLLM2_GGUF"),
        models_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf"),
        |p| p.is_file(),
        "SmolLM2 GGUF",
        "scripts/fetch-model.sh",
    )
}

/// SmolLM2's tokenizer as an HF folder (tokenizer.json, chat template), saved into the model
/// cache by `scripts/parity/make_tokenizer_reference.py`.
pub fn smollm2_tokenizer_dir() -> PathBuf {
    locate(
        Some("RL_SMOLLM2_TOKENIZER"),
        models_dir().join("smollm2-135m-instruct-tokenizer"),
        |p| p.join("tokenizer.json").is_file(),
        "SmolLM2 tokenizer folder",
        "scripts/with-torch.sh python scripts/parity/make_tokenizer_reference.py",
    )
}

/// The all-MiniLM-L6-v2 directory (`RL_MINILM_DIR`).
pub fn minilm_dir() -> PathBuf {
    locate(
        Some("RL_MINILM_DIR"),
        models_dir().join("all-MiniLM-L6-v2"),
        |p| p.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2",
        "scripts/fetch-minilm.sh",
    )
}

/// The project's Python: the torch venv `scripts/torch-env.sh` makes (`RL_TORCH_VENV`, which
/// `make test` exports), for tests that compare with transformers.
pub fn python() -> PathBuf {
    let venv = std::env::var_os("RL_TORCH_VENV")
        .map_or_else(|| cache_dir().join("torch-2.11.0/venv"), PathBuf::from);
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no Python venv at {}: run scripts/torch-env.sh (`make test` does), or set RL_TORCH_VENV",
        venv.display()
    );
    python
}
