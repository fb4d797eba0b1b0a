//! One macro for every enum of reasons that is also a label in /metrics and the views:
//! the variants, their labels and documentation written once, `ALL` in declaration order,
//! `COUNT`, and `index()` (the variant's place in `ALL`, for arrays of counters indexed
//! the one way). A new variant cannot be forgotten in the label, the list or a counter.

/// `labelled_enum! { /// doc  pub enum Name { Variant => "label": "doc", ... } }`
#[macro_export]
macro_rules! labelled_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident {
        $($variant:ident => $label:literal: $doc:literal,)*
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        $vis enum $name {
            $(#[doc = $doc] $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            pub const COUNT: usize = Self::ALL.len();

            pub const fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)*
                }
            }

            /// Its place in `ALL`: the index of its counter.
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

/// Checks what the macro promises of `all`: labels unique and snake_case, each variant
/// at its own index.
pub fn check_labels<T: Copy + PartialEq + std::fmt::Debug>(
    all: &[T],
    label: impl Fn(T) -> &'static str,
    index: impl Fn(T) -> usize,
) {
    let mut seen = std::collections::HashSet::new();
    for (i, &r) in all.iter().enumerate() {
        let l = label(r);
        assert!(seen.insert(l), "{l} twice");
        assert!(
            l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{l} is not snake_case"
        );
        assert_eq!(index(r), i, "{r:?}");
    }
}
