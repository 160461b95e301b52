//! The README's library example is the example `cargo test` compiles, word for word.

#[test]
fn the_readme_library_example_is_the_compiled_example() {
    let readme = include_str!("../../../README.md");
    let example = include_str!("../examples/library.rs");
    let section = readme.split("\n## Using the crates as a library\n").nth(1).expect("the section");
    let block = section
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```\n").next())
        .expect("a rust block in the section");
    assert_eq!(format!("{block}\n"), example);
}
