//! The GGUF reader against gguf-py (llama.cpp's Python library): every supported ggml type
//! dequantises to exactly gguf-py's values, metadata of every value type reads back, and bad
//! input (wrong magic, other versions, truncated or corrupt files, unknown tensors, unsupported
//! types) gives errors that name the file and do not panic.
//!
//! Fixtures come from `scripts/gguf_fixtures.py synthetic`.

use std::path::{Path, PathBuf};

use rl_gguf::{Array, GgmlType, GgufError, GgufFile, Value};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read_f32s(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("expected values");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// `bytes` written to a fresh file in `dir`.
fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

/// Checks the tensors of `file` named in expected.json equal gguf-py's values bit for bit.
fn check_against_gguf_py(file: &GgufFile) -> usize {
    let text = std::fs::read_to_string(fixture("expected.json")).expect("expected.json");
    let expected: serde_json::Value = serde_json::from_str(&text).expect("expected.json parses");
    let mut checked = 0;
    for (name, want) in expected.as_object().expect("an object") {
        let Ok(info) = file.tensor_info(name) else {
            continue;
        };
        assert_eq!(info.ggml_type.name(), want["type"], "{name}: type");
        let (data, shape) = file.tensor_f32(name).expect("supported tensor dequantises");
        let want_shape: Vec<usize> =
            serde_json::from_value(want["shape"].clone()).expect("shape is a list");
        assert_eq!(shape, want_shape, "{name}: shape");
        assert_eq!(
            data.len(),
            shape.iter().product::<usize>(),
            "{name}: length"
        );
        let want_data = read_f32s(&fixture(&format!("expected/{name}.f32")));
        assert_eq!(data.len(), want_data.len(), "{name}: length vs gguf-py");
        for (i, (a, b)) in data.iter().zip(&want_data).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{name}[{i}]: {a} vs gguf-py {b}");
        }
        checked += 1;
    }
    checked
}

#[test]
fn every_supported_type_matches_gguf_py_bit_for_bit() {
    let file = GgufFile::open(fixture("all-types.gguf")).unwrap();
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 32);
    assert_eq!(file.data_offset() % 32, 0);
    assert_eq!(file.tensors().len(), 10);
    assert_eq!(check_against_gguf_py(&file), 9);

    let types: Vec<GgmlType> = file.tensors().iter().map(|t| t.ggml_type).collect();
    for ty in rl_gguf::dequant::SUPPORTED {
        assert!(types.contains(&ty), "the fixture lacks a {ty} tensor");
    }
    // ggml dims are innermost first; shapes come back reversed.
    let f32_info = file.tensor_info("f32").unwrap();
    assert_eq!(f32_info.dims, [16, 3, 2]);
    assert_eq!(f32_info.shape(), [2, 3, 16]);
    assert_eq!(f32_info.n_elements(), 96);
    assert_eq!(file.tensor_bytes("q4_k").unwrap().len(), 4 * 144);
}

#[test]
fn custom_alignment_is_honoured() {
    let file = GgufFile::open(fixture("aligned-64.gguf")).unwrap();
    assert_eq!(file.alignment(), 64);
    assert_eq!(file.data_offset() % 64, 0);
    assert_eq!(file.metadata().get_u32("general.alignment").unwrap(), 64);
    assert_eq!(check_against_gguf_py(&file), 2);
}

#[test]
fn metadata_of_every_value_type_reads_back() {
    let file = GgufFile::open(fixture("all-types.gguf")).unwrap();
    let md = file.metadata();
    assert_eq!(md.get_str("general.architecture").unwrap(), "test");
    assert_eq!(md.get("test.u8"), Some(&Value::U8(200)));
    assert_eq!(md.get("test.i8"), Some(&Value::I8(-100)));
    assert_eq!(md.get("test.u16"), Some(&Value::U16(60000)));
    assert_eq!(md.get("test.i16"), Some(&Value::I16(-30000)));
    assert_eq!(md.get("test.u32"), Some(&Value::U32(4_000_000_000)));
    assert_eq!(md.get("test.i32"), Some(&Value::I32(-2_000_000_000)));
    assert_eq!(md.get("test.f32"), Some(&Value::F32(3.25)));
    assert_eq!(md.get("test.bool"), Some(&Value::Bool(true)));
    assert_eq!(md.get("test.u64"), Some(&Value::U64((1 << 40) + 1)));
    assert_eq!(md.get("test.i64"), Some(&Value::I64(-(1 << 40))));
    assert_eq!(md.get("test.f64"), Some(&Value::F64(1.0 / 3.0)));
    assert_eq!(md.get_str("test.string").unwrap(), "héllo ✓");

    // Typed getters widen integers when the value fits.
    assert_eq!(md.get_u32("test.u8").unwrap(), 200);
    assert_eq!(md.get_u64("test.u64").unwrap(), (1 << 40) + 1);
    assert_eq!(md.get_i64("test.i16").unwrap(), -30000);
    assert_eq!(md.get_f32("test.f32").unwrap(), 3.25);
    assert_eq!(md.get_f64("test.f64").unwrap(), 1.0 / 3.0);
    assert!(md.get_bool("test.bool").unwrap());

    let arr = |k| md.get_array(k).unwrap().clone();
    assert_eq!(arr("test.array.u8"), Array::U8(vec![1, 2, 255]));
    assert_eq!(md.get_i32_array("test.array.i32").unwrap(), [1, -2, 3]);
    assert_eq!(arr("test.array.u64"), Array::U64(vec![1 << 63]));
    assert_eq!(md.get_f32_array("test.array.f32").unwrap(), [0.5, -1.5]);
    assert_eq!(arr("test.array.f64"), Array::F64(vec![0.25]));
    assert_eq!(arr("test.array.bool"), Array::Bool(vec![true, false]));
    assert_eq!(
        md.get_str_array("test.array.string").unwrap(),
        ["a", "", "ünï"]
    );
    assert_eq!(
        arr("test.array.nested"),
        Array::Array(vec![Array::I32(vec![1, 2]), Array::I32(vec![3])])
    );
    assert_eq!(
        arr("test.array.nested_str"),
        Array::Array(vec![
            Array::String(vec!["x".into()]),
            Array::String(vec!["y".into(), "z".into()])
        ])
    );
    assert!(md.iter().any(|(k, _)| k == "test.array.nested"));
}

#[test]
fn metadata_errors_name_the_key_and_file() {
    let file = GgufFile::open(fixture("all-types.gguf")).unwrap();
    let md = file.metadata();
    let err = md.get_u32("llama.block_count").unwrap_err();
    assert!(matches!(err, GgufError::MissingKey { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("llama.block_count") && msg.contains("all-types.gguf"),
        "{msg}"
    );

    let msg = md.get_u32("test.string").unwrap_err().to_string();
    assert!(
        msg.contains("test.string") && msg.contains("string"),
        "{msg}"
    );
    let msg = md.get_u32("test.i8").unwrap_err().to_string();
    assert!(msg.contains("i8 -100"), "{msg}");
    let msg = md.get_str_array("test.array.i32").unwrap_err().to_string();
    assert!(msg.contains("an array of 3 i32 values"), "{msg}");
}

#[test]
fn unsupported_type_names_the_type_and_the_supported_ones() {
    let file = GgufFile::open(fixture("all-types.gguf")).unwrap();
    assert_eq!(
        file.tensor_info("unsupported.q5_0").unwrap().ggml_type,
        GgmlType::Q5_0
    );
    let err = file.tensor_f32("unsupported.q5_0").unwrap_err();
    assert!(matches!(err, GgufError::UnsupportedType { .. }), "{err}");
    let msg = err.to_string();
    for part in [
        "unsupported.q5_0",
        "Q5_0",
        "all-types.gguf",
        "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K",
    ] {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }
    // The raw bytes are still there for callers that decode it themselves.
    assert_eq!(file.tensor_bytes("unsupported.q5_0").unwrap().len(), 22);
}

#[test]
fn unknown_tensor_names_the_file_and_the_closest_names() {
    let file = GgufFile::open(fixture("all-types.gguf")).unwrap();
    let err = file.tensor_f32("q4_kk").unwrap_err();
    assert!(matches!(err, GgufError::UnknownTensor { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("`q4_kk`") && msg.contains("all-types.gguf"),
        "{msg}"
    );
    assert!(msg.contains("the closest being `q4_k`"), "{msg}");
    assert!(file.tensor_bytes("nope").is_err());
}

#[test]
fn missing_and_non_gguf_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.gguf");
    let msg = GgufFile::open(&missing).unwrap_err().to_string();
    assert!(msg.contains("missing.gguf"), "{msg}");

    let mut bytes = std::fs::read(fixture("all-types.gguf")).unwrap();
    bytes[..4].copy_from_slice(b"GGML");
    let path = write(&dir, "wrong-magic.gguf", &bytes);
    let err = GgufFile::open(&path).unwrap_err();
    assert!(matches!(err, GgufError::NotGguf { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("not a GGUF file") && msg.contains("wrong-magic.gguf"),
        "{msg}"
    );

    for (name, bytes) in [
        ("empty", &b""[..]),
        ("text", b"{\"model\": 1}\n"),
        ("gg", b"GG"),
    ] {
        let path = write(&dir, name, bytes);
        let err = GgufFile::open(&path).unwrap_err();
        assert!(matches!(err, GgufError::NotGguf { .. }), "{name}: {err}");
    }
}

#[test]
fn versions_2_and_3_open_others_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let orig = std::fs::read(fixture("all-types.gguf")).unwrap();
    let with_version = |v: [u8; 4]| {
        let mut b = orig.clone();
        b[4..8].copy_from_slice(&v);
        b
    };
    let v2 = write(&dir, "v2.gguf", &with_version(2u32.to_le_bytes()));
    let file = GgufFile::open(&v2).unwrap();
    assert_eq!(file.version(), 2);
    assert_eq!(check_against_gguf_py(&file), 9);

    for v in [1u32, 4, 0] {
        let path = write(&dir, "v.gguf", &with_version(v.to_le_bytes()));
        let err = GgufFile::open(&path).unwrap_err();
        assert!(matches!(err, GgufError::UnsupportedVersion { version, .. } if version == v));
        assert!(err.to_string().contains("versions 2 and 3"), "{err}");
    }
    let path = write(&dir, "be.gguf", &with_version(3u32.to_be_bytes()));
    let err = GgufFile::open(&path).unwrap_err();
    assert!(matches!(err, GgufError::BigEndian { .. }), "{err}");
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let orig = std::fs::read(fixture("all-types.gguf")).unwrap();
    let file = GgufFile::open(fixture("all-types.gguf")).unwrap();
    let data_end = file
        .tensors()
        .iter()
        .map(|t| file.data_offset() + t.offset + t.n_bytes)
        .max()
        .unwrap() as usize;
    let path = dir.path().join("cut.gguf");
    // Every cut inside the header and tensor table; cuts into the data every 37 bytes.
    let header_end = file.data_offset() as usize;
    let cuts = (0..header_end).chain((header_end..data_end).step_by(37));
    for len in cuts.chain([data_end - 1]) {
        std::fs::write(&path, &orig[..len]).unwrap();
        let err = GgufFile::open(&path).expect_err("a truncated file must not open");
        match &err {
            GgufError::NotGguf { .. } => assert!(len < 4),
            GgufError::Truncated { .. } | GgufError::TensorPastEnd { .. } => {
                let msg = err.to_string();
                assert!(
                    msg.contains("cut.gguf") && msg.contains("truncated"),
                    "{msg}"
                );
            }
            other => panic!("cut at {len}: unexpected error {other}"),
        }
    }
    // Trailing padding after the last tensor is not needed.
    std::fs::write(&path, &orig[..data_end]).unwrap();
    GgufFile::open(&path).unwrap();
}

#[test]
fn corrupt_lengths_and_types_are_errors_not_allocations() {
    let dir = tempfile::tempdir().unwrap();
    let orig = std::fs::read(fixture("all-types.gguf")).unwrap();
    let patched = |at: usize, with: &[u8]| {
        let mut b = orig.clone();
        b[at..at + with.len()].copy_from_slice(with);
        b
    };
    // Header: magic, version, tensor count (8..16), metadata count (16..24), then the first
    // key's length (24..32), the key, and its value type.
    let key_len = u64::from_le_bytes(orig[24..32].try_into().unwrap()) as usize;
    let value_type_at = 32 + key_len;
    let cases: [(&str, Vec<u8>); 5] = [
        ("huge key length", patched(24, &u64::MAX.to_le_bytes())),
        ("huge metadata count", patched(16, &u64::MAX.to_le_bytes())),
        (
            "huge tensor count",
            patched(8, &(u64::MAX / 2).to_le_bytes()),
        ),
        (
            "bad value type",
            patched(value_type_at, &77u32.to_le_bytes()),
        ),
        ("invalid UTF-8 key", patched(32, &[0xff])),
    ];
    for (what, bytes) in cases {
        let path = write(&dir, "corrupt.gguf", &bytes);
        let err = GgufFile::open(&path).expect_err(what);
        let msg = err.to_string();
        assert!(msg.contains("corrupt.gguf"), "{what}: {msg}");
        assert!(
            matches!(
                err,
                GgufError::Truncated { .. } | GgufError::Malformed { .. }
            ),
            "{what}: {msg}"
        );
    }
}
