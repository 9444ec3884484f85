//! Links libtorch with the flags and rpaths every libtorch-linking crate needs (see rl-build).

fn main() {
    rl_build::link_libtorch();
}
