//! `choice!`: closed sets of named options (algorithm, KL estimator, ...) as plain enums that
//! (de)serialise as snake_case strings and print the way they are written in TOML.

/// Declares a `Copy` enum whose variants (de)serialise as the given snake_case names, with
/// `as_str()`, `ALL` (for error messages), `VARIANTS`, `Display` and `FromStr` (so command-line flags take
/// the same names as the config).
#[macro_export]
macro_rules! choice {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every option, as written in TOML.
            pub const ALL: &'static [&'static str] = &[$($text),+];

            /// Every option.
            pub const VARIANTS: &'static [Self] = &[$(Self::$variant),+];

            /// The option as written in TOML.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(format!("unknown {} {s:?}: expected one of {}", stringify!($name), Self::ALL.join(", "))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
