//! `#[derive(Object)]` for rtipc. Use it through the `rtipc` crate, which re-exports it.

use proc_macro::TokenStream;

/// See `rtipc::Object`.
#[proc_macro_derive(Object, attributes(rtipc))]
pub fn derive_object(input: TokenStream) -> TokenStream {
    let _ = input;
    TokenStream::new()
}
