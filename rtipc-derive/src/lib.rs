//! `#[derive(Object)]` for rtipc. Use it through the `rtipc` crate, which re-exports it and
//! documents it: see `rtipc::Object`.
//!
//! The derive works in three stages, one module each: `parse` reads the input into a small
//! model, `validate` refuses everything that cannot be an object (reporting every problem at
//! once, each spanned on its token), and `expand` emits the impls together with the trait
//! bounds and `const` checks through which the compiler proves the rest. `output_tests`
//! compares the expansion of a few inputs with the expected files in `tests/expand`.

#![forbid(unsafe_code)]

mod expand;
mod parse;
mod validate;

#[cfg(test)]
mod output_tests;
#[cfg(test)]
mod tests;

use proc_macro2::TokenStream;
use syn::DeriveInput;

// Documented on its re-export, `rtipc::Object`, where the examples can use it.
#[proc_macro_derive(Object, attributes(rtipc))]
pub fn derive_object(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    match derive(&input) {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let mut tokens = error.to_compile_error();
            tokens.extend(expand::fallback(&input));
            tokens.into()
        }
    }
}

/// The whole derive: parse, validate, expand.
fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = parse::Errors::default();
    let model = parse::parse(input, &mut errors);
    validate::validate(&model, &mut errors);
    errors.finish()?;
    Ok(expand::expand(&model))
}
