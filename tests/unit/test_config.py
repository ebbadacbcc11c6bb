"""Configuration: precedence, the upstream INI import, and one clear message per bad value."""

from __future__ import annotations

import ipaddress
import json
import textwrap

import pytest
from typer.testing import CliRunner

from ckm.cli import app
from config.errors import ConfigError
from config.loading import load
from config.settings import Settings

UPSTREAM_INI = textwrap.dedent("""\
    [DEFAULTS]
    log_level = SYS_NOTICE
    token = kube-secret-token

    [KUBERNETES]
    cluster_name = prod
    pod_subnets = 10.40.0.0/16 10.41.0.0/16
    service_subnets = 10.100.0.0/16
    kubernetes_api_server = 192.0.2.10
    kubernetes_api_port = 8080
    kubernetes_api_secure_port = 6443
    kubernetes_cluster_domain = k8s-domain

    [VNC]
    vnc_endpoint_ip = 192.0.2.1,192.0.2.2
    vnc_endpoint_port = 18082
    public_fip_pool = {'domain': 'default-domain', 'project': 'admin',
        'network': 'public', 'name': 'pool'}
    cassandra_server_list = 192.0.2.5:9160

    [AUTH]
    auth_user = ckm-admin
    auth_password = hunter2
    auth_tenant = admin
    auth_token_url = http://192.0.2.3:35357/v3/auth/tokens
    """)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_follow_the_contract():
    settings = Settings()
    assert settings.cluster_name == "k8s"
    assert settings.domain == "default-domain"
    assert settings.pod_subnets == [ipaddress.IPv4Network("10.32.0.0/12")]
    assert settings.service_subnets == [ipaddress.IPv4Network("10.96.0.0/12")]
    assert settings.unmanaged_namespaces == ["kube-system"]
    assert "opencontrail.kubernetes.isolated" in settings.isolation_annotations
    assert settings.max_attempts == 8


def test_precedence_default_file_env_flag(tmp_path):
    config = write(tmp_path, "ckm.toml", 'cluster_name = "from-file"\ndomain = "file-domain"\n'
                                         'max_attempts = 3\n')
    env = {"CKM_DOMAIN": "env-domain", "CKM_MAX_ATTEMPTS": "4"}
    loaded = load(config_file=config, environ=env, flags={"max_attempts": "5"})
    assert loaded.settings.cluster_name == "from-file"
    assert loaded.settings.domain == "env-domain"
    assert loaded.settings.max_attempts == 5
    assert loaded.settings.broker_url == "redis://127.0.0.1:6379/0"
    assert loaded.origin("cluster_name") == f"file {config}"
    assert loaded.origin("domain") == "env CKM_DOMAIN"
    assert loaded.origin("max_attempts") == "flag --max-attempts"
    assert loaded.origin("broker_url") == "default"


def test_config_file_named_by_environment(tmp_path):
    config = write(tmp_path, "ckm.yaml", "cluster_name: yaml-cluster\npod_subnets:\n"
                                         "  - 10.50.0.0/16\n")
    loaded = load(environ={"CKM_CONFIG": str(config)})
    assert loaded.settings.cluster_name == "yaml-cluster"
    assert loaded.settings.pod_subnets == [ipaddress.IPv4Network("10.50.0.0/16")]


def test_lists_from_environment_accept_commas_spaces_and_json():
    for raw in ("10.0.0.0/16,10.1.0.0/16", "10.0.0.0/16 10.1.0.0/16",
                '["10.0.0.0/16", "10.1.0.0/16"]'):
        settings = load(environ={"CKM_POD_SUBNETS": raw}).settings
        assert [str(n) for n in settings.pod_subnets] == ["10.0.0.0/16", "10.1.0.0/16"]


def test_upstream_ini_is_imported(tmp_path):
    ini = write(tmp_path, "contrail-kubernetes.conf", UPSTREAM_INI)
    loaded = load(config_file=ini, environ={})
    s = loaded.settings
    assert s.cluster_name == "prod"
    assert s.domain == "k8s-domain"
    assert [str(n) for n in s.pod_subnets] == ["10.40.0.0/16", "10.41.0.0/16"]
    assert [str(n) for n in s.service_subnets] == ["10.100.0.0/16"]
    # a token means the secure port, as upstream does
    assert s.kube_url == "https://192.0.2.10:6443"
    assert s.kube_token.get_secret_value() == "kube-secret-token"
    assert s.contrail_urls == ["http://192.0.2.1:18082", "http://192.0.2.2:18082"]
    assert s.public_fip_pool == "default-domain:admin:public:pool"
    assert (s.contrail_user, s.contrail_tenant) == ("ckm-admin", "admin")
    assert s.contrail_password.get_secret_value() == "hunter2"
    assert s.contrail_auth == "keystone"
    assert s.keystone_url == "http://192.0.2.3:35357/v3/auth/tokens"
    assert loaded.origin("contrail_urls").startswith(f"ini {ini} [VNC] vnc_endpoint_ip")


def test_environment_beats_upstream_ini(tmp_path):
    ini = write(tmp_path, "contrail-kubernetes.conf", UPSTREAM_INI)
    loaded = load(config_file=ini, environ={"CKM_CLUSTER_NAME": "override"})
    assert loaded.settings.cluster_name == "override"
    assert loaded.origin("cluster_name") == "env CKM_CLUSTER_NAME"


def test_insecure_ini_api_server_uses_plain_port(tmp_path):
    ini = write(tmp_path, "k.conf", "[KUBERNETES]\nkubernetes_api_server = 192.0.2.9\n")
    assert load(config_file=ini, environ={}).settings.kube_url == "http://192.0.2.9:8080"


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"environ": {"CKM_POD_SUBNETS": "10.32.0.1/12"}},
     ["pod_subnets", "env CKM_POD_SUBNETS", "host bits set"]),
    ({"environ": {"CKM_SERVICE_SUBNETS": "not-a-cidr"}},
     ["service_subnets", "env CKM_SERVICE_SUBNETS", "not a valid IPv4 CIDR"]),
    ({"environ": {"CKM_POD_SUBNETS": "10.96.0.0/16"}},
     ["pod_subnets from env CKM_POD_SUBNETS", "service_subnets from default", "overlaps"]),
    ({"environ": {"CKM_METRICS_PORT": "70000"}},
     ["metrics_port", "env CKM_METRICS_PORT", "65535"]),
    ({"environ": {}, "flags": {"max_attempts": "0"}},
     ["max_attempts", "flag --max-attempts", "greater than or equal to 1"]),
    ({"environ": {"CKM_CONTRAIL_URLS": "ftp://x"}},
     ["contrail_urls", "env CKM_CONTRAIL_URLS", "not an http(s) URL"]),
    ({"environ": {"CKM_PUBLIC_FIP_POOL": "a:b"}},
     ["public_fip_pool", "domain:project:network:pool"]),
    ({"environ": {}, "flags": {"no_such_key": "1"}}, ["unknown setting 'no_such_key'"]),
])
def test_bad_values_name_key_and_source(kwargs, expected):
    with pytest.raises(ConfigError) as caught:
        load(**kwargs)
    for fragment in expected:
        assert fragment in str(caught.value)


def test_unknown_key_in_our_file(tmp_path):
    config = write(tmp_path, "ckm.toml", 'cluster_nmae = "typo"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'cluster_nmae' in config file .*ckm.toml"
                       r"; did you mean 'cluster_name'\?"):
        load(config_file=config, environ={})


def test_misspelt_environment_variable_is_named_with_a_suggestion():
    loaded = load(environ={"CKM_BROKER": "redis://x", "CKM_STATE_DIR": "/x", "CKM_DOMAIN": "d",
                           # what Kubernetes sets for a Service ckm-redis: not a typo
                           "CKM_REDIS_SERVICE_HOST": "10.0.0.1", "CKM_REDIS_PORT":
                           "tcp://10.0.0.1:16379", "CKM_REDIS_PORT_16379_TCP_ADDR": "10.0.0.1"})
    assert loaded.warnings == ("environment variable CKM_BROKER is not a ckm setting, ignored; "
                               "did you mean 'CKM_BROKER_URL'?",)


@pytest.mark.parametrize(("line", "refused"), [
    ("[DEFAULTS]\nnested_mode = 1", "nested mode"),
    ("[KUBERNETES]\nip_fabric_forwarding = True", "renumber every pod"),
])
def test_upstream_options_that_would_change_the_network_are_refused(tmp_path, line, refused):
    ini = write(tmp_path, "k.conf", f"{line}\n[VNC]\nnested_mode = 0\n")
    with pytest.raises(ConfigError, match="cannot honour") as caught:
        load(config_file=ini, environ={})
    key, value = line.split("\n")[1].split(" = ")
    assert refused in str(caught.value) and f"{key} = '{value}'" in str(caught.value)


def test_upstream_options_ckm_does_not_carry_over_are_named(tmp_path):
    ini = write(tmp_path, "k.conf", UPSTREAM_INI + textwrap.dedent("""\
        [KUBERNETES]
        ip_fabric_snat = true
        cluster_project = {'domain': 'default-domain', 'project': 'k8s'}
        ip_fabric_forwarding = false
        host_network_service = False
        api_service_link_local = False
        kube_timer_interval = 300
        pod_subnet = 10.0.0.0/8
        [DEFAULTS]
        nested_mode = 0 ; as written by the installer
        host_network_service = true
        global_tags = 0
        rabbit_server = 192.0.2.7
        db_driver = etcd
        """).replace("[KUBERNETES]", "[KUBERNETES2]").replace("[DEFAULTS]\nnested", "[D2]\nnested"))
    loaded = load(config_file=ini, environ={})
    text = "\n".join(loaded.warnings)
    # each behaviour-changing option that asks for something ckm does not do, and nothing else
    assert len(loaded.warnings) == 4, text
    assert "ip_fabric_snat = 'true': not supported: ckm sets up no SNAT" in text
    assert "cluster_project = " in text and "one project per namespace" in text
    assert "host_network_service = 'true': not supported" in text
    assert "pod_subnet = '10.0.0.0/8': not an upstream kube-manager option, ignored; " \
           "did you mean 'pod_subnets'?" in text
    # mapped where ckm has the equivalent
    assert loaded.settings.resync_interval == 300
    assert "kube_timer_interval" in loaded.origin("resync_interval")


@pytest.mark.parametrize("lines", [
    "[KUBERNETES]\nip_fabric_forwarding = 1",   # upstream turns it on only for "true"
    "[DEFAULTS]\nnested_mode = true",           # ... and nested mode only for "1"
    "[VNC]\npublic_fip_pool = {}",              # what the installers write: no pool
])
def test_upstream_values_that_mean_off_upstream_pass(tmp_path, lines):
    ini = write(tmp_path, "k.conf", f"{lines}\n[LINK]\napi_service_link_local = False\n")
    loaded = load(config_file=ini, environ={})
    assert loaded.warnings == () and loaded.settings.public_fip_pool is None


def test_configparser_default_section_is_read_as_upstream_wrote_it(tmp_path):
    ini = write(tmp_path, "k.conf", "[DEFAULT]\nnested_mode = 1\n[KUBERNETES]\n"
                "cluster_name = prod\n[VNC]\nvnc_endpoint_port = 8082\n")
    with pytest.raises(ConfigError) as caught:
        load(config_file=ini, environ={})
    assert str(caught.value).count("nested_mode") == 1 and "[DEFAULT]" in str(caught.value)


def test_upstream_defaults_that_differ_from_ckm_are_named(tmp_path):
    ini = write(tmp_path, "k.conf", "[KUBERNETES]\ncluster_name = prod\n")
    assert load(config_file=ini, environ={}).warnings == (
        f"{ini}: api_service_link_local is absent, so upstream used True: not supported: "
        "ckm makes no link-local service for the API server",)


def test_cli_prints_upstream_warnings_on_stderr_and_keeps_stdout_parseable(tmp_path):
    ini = write(tmp_path, "k.conf", "[KUBERNETES]\nip_fabric_snat = True\n"
                "api_service_link_local = false\n")
    result = CliRunner().invoke(app, ["--config", str(ini), "config", "show", "--json"], env={})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cluster_name"]["value"] == "k8s"
    assert "warning:" in result.stderr and "[KUBERNETES] ip_fabric_snat" in result.stderr


def test_bad_value_in_our_file_names_the_file(tmp_path):
    config = write(tmp_path, "ckm.toml", 'pod_subnets = ["10.32.0.0/33"]\n')
    with pytest.raises(ConfigError, match=rf"pod_subnets .*from file {config}"):
        load(config_file=config, environ={})


def test_ini_port_out_of_range(tmp_path):
    ini = write(tmp_path, "k.conf",
                "[VNC]\nvnc_endpoint_ip = 192.0.2.1\nvnc_endpoint_port = 99999\n")
    with pytest.raises(ConfigError, match=r"vnc_endpoint_port = '99999' \(ini .*\[VNC\].*1-65535"):
        load(config_file=ini, environ={})


def test_ini_malformed_fip_pool(tmp_path):
    ini = write(tmp_path, "k.conf", "[VNC]\npublic_fip_pool = {'domain': 'd'}\n")
    with pytest.raises(ConfigError, match="public_fip_pool"):
        load(config_file=ini, environ={})


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(config_file=tmp_path / "nope.toml", environ={})


def test_secret_value_never_in_error_message():
    with pytest.raises(ConfigError) as caught:
        load(environ={"CKM_CONTRAIL_PASSWORD": "hunter2", "CKM_CONTRAIL_AUTH": "ldap"})
    assert "hunter2" not in str(caught.value)


def test_cli_config_show_masks_secrets_and_shows_sources(tmp_path):
    ini = write(tmp_path, "contrail-kubernetes.conf", UPSTREAM_INI)
    result = CliRunner().invoke(
        app, ["--config", str(ini), "--set", "cluster_name=cli", "config", "show", "--json"],
        env={"CKM_DOMAIN": "env-domain"})
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["cluster_name"] == {"value": "cli", "source": "flag --set cluster_name"}
    assert shown["domain"]["source"] == "env CKM_DOMAIN"
    assert shown["contrail_password"]["value"] == "********"
    assert "hunter2" not in result.output and "kube-secret-token" not in result.output


def test_cli_bad_config_exits_2_with_one_message():
    result = CliRunner().invoke(app, ["config", "show"], env={"CKM_POD_SUBNETS": "10.96.0.0/12"})
    assert result.exit_code == 2
    assert "configuration error" in result.output
    assert "Traceback" not in result.output


def test_cli_version_and_help():
    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).output.startswith("ckm ")
    assert "config" in runner.invoke(app, ["--help"]).output
