//! `sgplane::import::aws::import` over files on disk: a CloudMapper
//! `account-data/ACCOUNT/REGION/` directory (per-resource calls in folders
//! named after the call, files named after the URL-encoded resource), and a
//! malformed file.

use std::path::PathBuf;

use sgplane::import::aws;
use sgplane::policy::Policy;

fn data(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/aws")
        .join(p)
}

#[test]
fn a_cloudmapper_directory_imports_and_compiles() {
    let dir = data("cloudmapper");
    let i = aws::import(std::slice::from_ref(&dir)).unwrap();
    let m = &i.model;
    assert_eq!(m.source, dir.display().to_string());
    let imported = m.imported.as_ref().unwrap();
    assert_eq!(imported.provider, "aws");
    assert_eq!(imported.inputs.len(), 9);

    assert_eq!(m.vpcs[0].region.as_deref(), Some("us-east-1"));
    assert_eq!(m.vpcs[0].account.as_deref(), Some("111122223333"));
    let pl = &m.prefix_lists[0];
    assert_eq!(
        (pl.name.as_str(), pl.entries.len(), pl.incomplete),
        ("pl-0123456789EXAMPLE", 2, false)
    );
    let eni = &m.interfaces[0];
    assert_eq!(eni.name, "eni-e5aa89a3");
    assert_eq!(
        eni.place.public_addresses[0].value.to_string(),
        "203.0.113.12/32"
    );
    let tg = &m.target_groups[0];
    assert_eq!(tg.targets[0].id.value, "i-1234567890abcdef0");
    assert_eq!(tg.targets[0].health.as_deref(), Some("healthy"));

    // The S3 listing is not read, and says so.
    assert_eq!(i.skipped.len(), 1, "{:?}", i.skipped);
    assert!(i.skipped[0].id.ends_with("s3-list-buckets.json"));
    assert_eq!(i.skipped[0].why, "not an AWS response sgplane reads");

    Policy::compile(m).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_malformed_file_names_the_file_and_path() {
    let e = aws::import(&[data("malformed")]).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "ec2-describe-subnets.json:$.Subnets[0].VpcId: expected a string, found a number"
        ),
        "{e}"
    );
}
