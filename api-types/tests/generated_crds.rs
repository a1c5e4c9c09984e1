//! `crds/` holds exactly what the code generates (`make crds` rewrites it).
#![allow(clippy::unwrap_used)] // test code may panic

use std::path::Path;

#[test]
fn crds_directory_matches_the_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let mut expected: Vec<(String, String)> = api_types::crd::pedia_crds()
        .iter()
        .map(|c| (api_types::crd::file_name(c), api_types::crd::to_yaml(c).unwrap()))
        .collect();
    expected.sort();
    let mut actual: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("crds/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    actual.sort();
    let names = |v: &[(String, String)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&actual), names(&expected), "crds/ has other files than the code generates; run `make crds`");
    for ((name, a), (_, e)) in actual.iter().zip(&expected) {
        assert!(a == e, "crds/{name} is stale; run `make crds`");
    }
}

#[test]
fn crd_file_names_follow_upstream() {
    let names: Vec<String> = api_types::crd::pedia_crds().iter().map(api_types::crd::file_name).collect();
    assert_eq!(
        names,
        [
            "cluster.clusterpedia.io_clustersyncresources.yaml",
            "cluster.clusterpedia.io_pediaclusters.yaml",
            "policy.clusterpedia.io_clusterimportpolicies.yaml",
            "policy.clusterpedia.io_pediaclusterlifecycles.yaml",
        ]
    );
}
