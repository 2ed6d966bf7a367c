//! `uniffi-bindgen`: writes the Kotlin, Swift and Python sources of the phone interface from
//! the built `flexwork-mobile` library (`scripts/bindings` runs it with the right arguments).

fn main() {
    uniffi::uniffi_bindgen_main()
}
