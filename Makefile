# The project's entry points. Each target is idempotent and sets up what it needs: the first run
# creates the libtorch venv (scripts/torch-env.sh) and builds; later runs reuse both.

CONFIG ?= configs/grpo.toml
ARGS ?=
TORCH := scripts/with-torch.sh

.PHONY: train test lint build doctor race clean-runs

## train: run `rl train $(CONFIG) $(ARGS)` (the default run) with a release build
train: build
	scripts/fetch-model.sh >/dev/null
	$(TORCH) target/release/rl train $(CONFIG) $(ARGS)

## test: build and run the whole test suite (unit, integration, end-to-end, TensorBoard read-back);
## first installs Gloo's headers if missing (scripts/system-deps.sh), fetches the SmolLM2-135M
## GGUF test model into the cache (scripts/fetch-model.sh, once), saves its tokenizer as an HF directory there (scripts/parity/make_tokenizer_reference.py) and
## fetches the all-MiniLM-L6-v2 BERT encoder the reward-model tests use (scripts/fetch-minilm.sh)
test:
	scripts/system-deps.sh
	$(TORCH) python scripts/parity/make_tokenizer_reference.py >/dev/null
	gguf=$$(scripts/fetch-model.sh) && minilm=$$(scripts/fetch-minilm.sh) && \
	  RL_SMOLLM2_GGUF="$$gguf" RL_MINILM_DIR="$$minilm" $(TORCH) cargo test --workspace --all-targets

## lint: formatting and clippy, warnings as errors
lint:
	cargo fmt --all -- --check
	$(TORCH) cargo clippy --workspace --all-targets -- -D warnings

## build: release build of `rl` (target/release/rl)
build:
	$(TORCH) cargo build --release -p rl-cli

## race: TRL's GRPOTrainer and rl train side by side on this machine (benches/race.sh $(ARGS))
race:
	benches/race.sh $(ARGS)

## doctor: what libtorch and devices `rl` sees here
doctor: build
	$(TORCH) target/release/rl doctor
