//! Printers of networking kinds as kube-apiserver has them: services, endpoints, endpoint
//! slices, ingresses, ingress classes, network policies.

use std::collections::BTreeSet;

use crate::table::at;
use serde_json::{Value, json};

use super::format::{items, label_selector, labels, list_with_more, or_none, text};
use super::{age, func, name, text_at};
use crate::table::Column;

/// The load balancer's addresses (IP, else hostname), sorted and unique.
fn load_balancer(o: &Value) -> Vec<String> {
    let set: BTreeSet<String> = items(o, "/status/loadBalancer/ingress")
        .iter()
        .filter_map(|i| {
            i["ip"].as_str().filter(|s| !s.is_empty()).or_else(|| i["hostname"].as_str().filter(|s| !s.is_empty()))
        })
        .map(str::to_owned)
        .collect();
    set.into_iter().collect()
}

/// `getServiceExternalIP` (wide: nothing clipped).
fn service_external_ip(o: &Value) -> String {
    let external: Vec<String> =
        items(o, "/spec/externalIPs").iter().filter_map(Value::as_str).map(str::to_owned).collect();
    match text(o, "/spec/type") {
        "ClusterIP" | "NodePort" => or_none(&external.join(",")),
        "LoadBalancer" => {
            let lb = load_balancer(o);
            match (external.is_empty(), lb.is_empty()) {
                (false, _) => lb.into_iter().chain(external).collect::<Vec<_>>().join(","),
                (true, false) => lb.join(","),
                (true, true) => "<pending>".into(),
            }
        }
        "ExternalName" => text(o, "/spec/externalName").to_owned(),
        _ => "<unknown>".into(),
    }
}

/// `makePortString`: `port[:nodePort]/protocol`, `<none>` without ports.
fn service_ports(o: &Value) -> String {
    let ports: Vec<String> = items(o, "/spec/ports")
        .iter()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64().filter(|n| *n > 0) {
                Some(np) => format!("{}:{np}/{protocol}", p["port"]),
                None => format!("{}/{protocol}", p["port"]),
            }
        })
        .collect();
    or_none(&ports.join(","))
}

pub(super) fn service() -> Vec<Column> {
    vec![
        name(),
        text_at("Type", "string", "/spec/type"),
        func("Cluster-IP", "string", |o, _| {
            json!(items(o, "/spec/clusterIPs").first().and_then(Value::as_str).map_or("<none>".into(), str::to_owned))
        }),
        func("External-IP", "string", |o, _| json!(service_external_ip(o))),
        func("Port(s)", "string", |o, _| json!(service_ports(o))),
        age(),
        func("Selector", "string", |o, _| json!(labels(at(o, "/spec/selector")))).priority(1),
    ]
}

/// `host:port` as Go's `net.JoinHostPort` writes it (IPv6 in brackets).
fn host_port(ip: &str, port: &Value) -> String {
    if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") }
}

/// `formatEndpoints`: up to three addresses (with each port), `+ N more...`, `<none>` without subsets.
fn endpoints(o: &Value) -> String {
    let subsets = items(o, "/subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let (mut list, mut count) = (Vec::new(), 0);
    for ss in subsets {
        let addresses = items(ss, "/addresses");
        let ports = items(ss, "/ports");
        if ports.is_empty() {
            count += addresses.len();
            list.extend(addresses.iter().map(|a| text(a, "/ip").to_owned()).take(MAX - list.len()));
            continue;
        }
        for port in ports {
            count += addresses.len();
            list.extend(addresses.iter().map(|a| host_port(text(a, "/ip"), &port["port"])).take(MAX - list.len()));
        }
    }
    let joined = list.join(",");
    if count > MAX { format!("{joined} + {} more...", count - MAX) } else { joined }
}

pub(super) fn endpoints_columns() -> Vec<Column> {
    vec![name(), func("Endpoints", "string", |o, _| json!(endpoints(o))), age()]
}

/// `formatDiscoveryPorts`: port numbers (or names, or `*`).
fn slice_ports(o: &Value) -> String {
    let ports = items(o, "/ports");
    let list: Vec<String> = ports
        .iter()
        .take(3)
        .map(|p| match (p["port"].as_i64(), p["name"].as_str()) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.to_owned(),
            (None, None) => "*".into(),
        })
        .collect();
    list_with_more(&list, ports.len(), 3)
}

/// `formatDiscoveryEndpoints`: the endpoints' addresses.
fn slice_endpoints(o: &Value) -> String {
    let all: Vec<&str> =
        items(o, "/endpoints").iter().flat_map(|e| items(e, "/addresses").iter().filter_map(Value::as_str)).collect();
    let list: Vec<String> = all.iter().take(3).map(|a| (*a).to_owned()).collect();
    list_with_more(&list, all.len(), 3)
}

pub(super) fn endpoint_slice() -> Vec<Column> {
    vec![
        name(),
        text_at("AddressType", "string", "/addressType"),
        func("Ports", "string", |o, _| json!(slice_ports(o))),
        func("Endpoints", "string", |o, _| json!(slice_endpoints(o))),
        age(),
    ]
}

/// `formatHosts`: the first three rule hosts, `+ N more...` (counting rules) when more rules
/// follow, `*` without any host.
fn ingress_hosts(o: &Value) -> String {
    let rules = items(o, "/spec/rules");
    let (mut list, mut more) = (Vec::new(), false);
    for r in rules {
        if list.len() == 3 {
            more = true;
        }
        if !more && let Some(host) = r["host"].as_str().filter(|h| !h.is_empty()) {
            list.push(host);
        }
    }
    match (list.is_empty(), more) {
        (true, _) => "*".into(),
        (false, true) => format!("{} + {} more...", list.join(","), rules.len() - 3),
        (false, false) => list.join(","),
    }
}

pub(super) fn ingress() -> Vec<Column> {
    vec![
        name(),
        func("Class", "string", |o, _| json!(or_none(text(o, "/spec/ingressClassName"))))
            .describe("The name of the IngressClass resource that should be used for additional configuration"),
        func("Hosts", "string", |o, _| json!(ingress_hosts(o)))
            .describe("Hosts that incoming requests are matched against before the ingress rule"),
        func("Address", "string", |o, _| json!(load_balancer(o).join(",")))
            .describe("Address is a list containing ingress points for the load-balancer"),
        func("Ports", "string", |o, _| json!(if items(o, "/spec/tls").is_empty() { "80" } else { "80, 443" }))
            .describe("Ports of TLS configurations that open"),
        age(),
    ]
}

pub(super) fn ingress_class() -> Vec<Column> {
    vec![
        name(),
        text_at("Controller", "string", "/spec/controller")
            .describe("Controller that is responsible for handling this class"),
        func("Parameters", "string", |o, _| {
            json!(match at(o, "/spec/parameters") {
                Some(p) if p.is_object() => {
                    let group = p["apiGroup"].as_str().map(|g| format!(".{g}")).unwrap_or_default();
                    format!("{}{group}/{}", text(p, "/kind"), text(p, "/name"))
                }
                _ => "<none>".into(),
            })
        })
        .describe("A reference to a resource with additional parameters"),
        age(),
    ]
}

pub(super) fn network_policy() -> Vec<Column> {
    vec![name(), func("Pod-Selector", "string", |o, _| json!(label_selector(at(o, "/spec/podSelector")))), age()]
}

#[cfg(test)]
mod tests {
    use super::super::tests::cells;
    use serde_json::json;

    #[test]
    fn services_by_type() {
        let svc = |spec: serde_json::Value, status: serde_json::Value| json!({"metadata": {"name": "s"}, "spec": spec, "status": status});
        let np = svc(
            json!({"type": "NodePort", "clusterIPs": ["10.96.0.1"], "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}], "selector": {"app": "web"}}),
            json!({}),
        );
        let c = cells("Service", &np);
        assert_eq!(c[1..5], [json!("NodePort"), json!("10.96.0.1"), json!("<none>"), json!("80:30080/TCP,53/UDP")]);
        assert_eq!(c[6], json!("app=web"));
        let headless = svc(json!({"type": "ClusterIP", "clusterIPs": ["None"], "externalIPs": ["1.2.3.4"]}), json!({}));
        assert_eq!(cells("Service", &headless)[2..5], [json!("None"), json!("1.2.3.4"), json!("<none>")]);
        let lb = svc(
            json!({"type": "LoadBalancer", "clusterIPs": ["10.0.0.9"]}),
            json!({"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "a.example.com"}, {"ip": "1.1.1.1"}]}}),
        );
        assert_eq!(cells("Service", &lb)[3], json!("1.1.1.1,5.6.7.8,a.example.com"), "a sorted set");
        let lb_ext = svc(
            json!({"type": "LoadBalancer", "externalIPs": ["9.9.9.9"]}),
            json!({"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}}),
        );
        assert_eq!(cells("Service", &lb_ext)[2..4], [json!("<none>"), json!("5.6.7.8,9.9.9.9")]);
        assert_eq!(cells("Service", &svc(json!({"type": "LoadBalancer"}), json!({})))[3], json!("<pending>"));
        assert_eq!(
            cells("Service", &svc(json!({"type": "ExternalName", "externalName": "db.example.com"}), json!({})))[3],
            json!("db.example.com")
        );
    }

    #[test]
    fn endpoints_slices_ingresses() {
        let ep = json!({"metadata": {"name": "e"}, "subsets": [
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
            {"addresses": [{"ip": "fd00::1"}]}]});
        assert_eq!(cells("Endpoints", &ep)[1], json!("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more..."));
        let v6 = json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
        assert_eq!(cells("Endpoints", &v6)[1], json!("[fd00::1]:80"));
        assert_eq!(cells("Endpoints", &json!({"metadata": {"name": "e"}}))[1], json!("<none>"));
        let slice = json!({"metadata": {"name": "s"}, "addressType": "IPv4",
            "ports": [{"port": 80}, {"name": "metrics"}, {}, {"port": 9}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]}]});
        assert_eq!(
            cells("EndpointSlice", &slice)[1..4],
            [json!("IPv4"), json!("80,metrics,* + 1 more..."), json!("10.0.0.1,10.0.0.2,10.0.0.3")]
        );
        assert_eq!(
            cells("EndpointSlice", &json!({"metadata": {"name": "s"}}))[2..4],
            [json!("<unset>"), json!("<unset>")]
        );
        let ing = json!({"metadata": {"name": "i"}, "spec": {"ingressClassName": "nginx", "tls": [{}],
            "rules": [{"host": "a.example.com"}, {}, {"host": "c.example.com"}, {"host": "d.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}}});
        assert_eq!(
            cells("Ingress", &ing)[1..5],
            [json!("nginx"), json!("a.example.com,c.example.com,d.example.com"), json!("5.6.7.8"), json!("80, 443")]
        );
        let many = json!({"metadata": {"name": "i"}, "spec": {"rules": [{"host": "a"}, {"host": "b"}, {}, {"host": "c"}, {"host": "d"}]}});
        assert_eq!(cells("Ingress", &many)[2], json!("a,b,c + 2 more..."), "the rules past the third host count");
        assert_eq!(
            cells("Ingress", &json!({"metadata": {"name": "i"}}))[1..5],
            [json!("<none>"), json!("*"), json!(""), json!("80")]
        );
        let np = json!({"metadata": {"name": "n"}, "spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
        assert_eq!(cells("NetworkPolicy", &np)[1], json!("role=db"));
    }
}
