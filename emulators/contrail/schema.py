"""The one schema table the emulator is generated from: types, parents, props, refs.

Written once from `vnc_api.gen.resource_common` (contrail-api-client 2005) as literal data, so
the emulator never imports the client at run time. Per type: allowed parent types, property
names (list props with their wrapper key, map props with wrapper and key name), refs as
`{target object type: carries an attr}`, enum restrictions and derived children (which never
block a delete). Children and back-refs are derived from the other types' parents and refs.
Only refs whose target is one of our types are listed. Every type also has the common props
`id_perms`, `perms2`, `display_name` and the map prop `annotations`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONFIG_ROOT = "config-root"
COMMON_PROPS = ("id_perms", "perms2", "display_name", "annotations")


@dataclass(frozen=True)
class T:
    """One type as written in the table; `TypeSpec` adds the derived parts."""

    parents: tuple[str, ...]
    props: tuple[str, ...] = ()
    list_props: dict[str, str] = field(default_factory=dict)
    map_props: dict[str, tuple[str, str]] = field(default_factory=dict)
    refs: dict[str, bool] = field(default_factory=dict)
    enums: dict[str, tuple] = field(default_factory=dict)
    derived_children: tuple[str, ...] = ()


TABLE: dict[str, T] = {
    "domain": T(
        parents=('config-root',),
        props=('domain_limits',),
        refs={'tag': False},
    ),
    "project": T(
        parents=('domain',),
        props=('alarm_enable', 'enable_security_policy_draft', 'quota', 'vxlan_routing'),
        refs={'application_policy_set': False,
              'floating_ip_pool': False,
              'namespace': True,
              'tag': False},
    ),
    "network-ipam": T(
        parents=('project',),
        props=('ipam_subnet_method', 'ipam_subnets', 'ipam_subnetting', 'network_ipam_mgmt'),
        list_props={'ipam_subnets': 'subnets'},
        refs={'tag': False},
        enums={'ipam_subnet_method': ('user-defined-subnet', 'flat-subnet', 'auto-subnet')},
    ),
    "virtual-network": T(
        parents=('project',),
        props=('address_allocation_mode', 'ecmp_hashing_include_fields', 'export_route_target_list',
               'external_ipam', 'fabric_snat', 'flood_unknown_unicast', 'igmp_enable',
               'import_route_target_list', 'is_provider_network', 'is_shared',
               'layer2_control_word', 'mac_aging_time', 'mac_learning_enabled', 'mac_limit_control',
               'mac_move_control', 'multi_policy_service_chains_enabled', 'pbb_etree_enable',
               'pbb_evpn_enable', 'port_security_enabled', 'provider_properties',
               'route_target_list', 'router_external', 'virtual_network_category',
               'virtual_network_fat_flow_protocols', 'virtual_network_network_id',
               'virtual_network_properties', 'virtual_network_routed_properties'),
        list_props={'virtual_network_fat_flow_protocols': 'fat_flow_protocol'},
        refs={'network_ipam': True, 'network_policy': True, 'tag': False, 'virtual_network': False},
        enums={'address_allocation_mode': ('user-defined-subnet-preferred',
                                           'user-defined-subnet-only', 'flat-subnet-preferred',
                                           'flat-subnet-only'),
               'virtual_network_category': ('infra', 'tenant', 'internal', 'routed')},
        derived_children=('routing_instances',),
    ),
    "routing-instance": T(
        parents=('virtual-network',),
        props=('default_ce_protocol', 'evpn_ipv6_service_chain_information',
               'evpn_service_chain_information', 'ipv6_service_chain_information',
               'routing_instance_fabric_snat', 'routing_instance_has_pnf',
               'routing_instance_is_default', 'service_chain_information', 'static_route_entries'),
        refs={'routing_instance': True, 'tag': False},
    ),
    "virtual-machine": T(
        parents=('config-root',),
        props=('server_type',),
        refs={'tag': False},
        enums={'server_type': ('virtual-server', 'baremetal-server', 'container')},
    ),
    "virtual-machine-interface": T(
        parents=('virtual-machine', 'project', 'virtual-router'),
        props=('ecmp_hashing_include_fields', 'igmp_enable', 'port_security_enabled',
               'virtual_machine_interface_allowed_address_pairs',
               'virtual_machine_interface_bindings', 'virtual_machine_interface_device_owner',
               'virtual_machine_interface_dhcp_option_list',
               'virtual_machine_interface_disable_policy',
               'virtual_machine_interface_fat_flow_protocols',
               'virtual_machine_interface_host_routes', 'virtual_machine_interface_mac_addresses',
               'virtual_machine_interface_properties', 'vlan_tag_based_bridge_domain',
               'vrf_assign_table'),
        list_props={'virtual_machine_interface_fat_flow_protocols': 'fat_flow_protocol'},
        map_props={'virtual_machine_interface_bindings': ('key_value_pair', 'key')},
        refs={'routing_instance': True,
              'security_group': False,
              'tag': False,
              'virtual_machine_interface': False,
              'virtual_machine': False,
              'virtual_network': False},
    ),
    "instance-ip": T(
        parents=('config-root',),
        props=('instance_ip_address', 'instance_ip_family', 'instance_ip_local_ip',
               'instance_ip_mode', 'instance_ip_secondary', 'instance_ip_subnet',
               'instance_ip_subscriber_tag', 'secondary_ip_tracking_ip', 'service_health_check_ip',
               'service_instance_ip', 'subnet_uuid'),
        refs={'network_ipam': False,
              'tag': False,
              'virtual_machine_interface': False,
              'virtual_network': False,
              'virtual_router': False},
        enums={'instance_ip_family': ('v4', 'v6'),
               'instance_ip_mode': ('active-active', 'active-standby')},
    ),
    "floating-ip-pool": T(
        parents=('virtual-network',),
        props=('floating_ip_pool_subnets',),
        refs={'tag': False},
    ),
    "floating-ip": T(
        parents=('floating-ip-pool', 'instance-ip'),
        props=('floating_ip_address', 'floating_ip_address_family', 'floating_ip_fixed_ip_address',
               'floating_ip_is_virtual_ip', 'floating_ip_port_mappings',
               'floating_ip_port_mappings_enable', 'floating_ip_traffic_direction'),
        list_props={'floating_ip_port_mappings': 'port_mappings'},
        refs={'project': False, 'tag': False, 'virtual_machine_interface': False},
        enums={'floating_ip_address_family': ('v4', 'v6'),
               'floating_ip_traffic_direction': ('ingress', 'egress', 'both')},
    ),
    "security-group": T(
        parents=('project',),
        props=('configured_security_group_id', 'security_group_entries', 'security_group_id'),
        refs={'tag': False},
    ),
    "loadbalancer": T(
        parents=('project',),
        props=('loadbalancer_properties', 'loadbalancer_provider'),
        refs={'service_appliance_set': False, 'tag': False, 'virtual_machine_interface': False},
    ),
    "loadbalancer-listener": T(
        parents=('project',),
        props=('loadbalancer_listener_properties',),
        refs={'loadbalancer': False, 'tag': False},
    ),
    "loadbalancer-pool": T(
        parents=('project',),
        props=('loadbalancer_pool_custom_attributes', 'loadbalancer_pool_properties',
               'loadbalancer_pool_provider'),
        refs={'loadbalancer_healthmonitor': False,
              'loadbalancer_listener': False,
              'service_appliance_set': False,
              'tag': False,
              'virtual_machine_interface': False},
    ),
    "loadbalancer-member": T(
        parents=('loadbalancer-pool',),
        props=('loadbalancer_member_properties',),
        refs={'tag': False},
    ),
    "loadbalancer-healthmonitor": T(
        parents=('project',),
        props=('loadbalancer_healthmonitor_properties',),
        refs={'tag': False},
    ),
    "virtual-router": T(
        parents=('global-system-config',),
        props=('virtual_router_dpdk_enabled', 'virtual_router_ip_address', 'virtual_router_type'),
        refs={'network_ipam': True, 'tag': False, 'virtual_machine': False},
        enums={'virtual_router_type': ('embedded', 'tor-agent', 'tor-service-node')},
    ),
    "global-system-config": T(
        parents=('config-root',),
        props=('alarm_enable', 'autonomous_system', 'bgp_always_compare_med', 'bgpaas_parameters',
               'config_version', 'data_center_interconnect_asn_namespace',
               'data_center_interconnect_loopback_namespace', 'enable_4byte_as',
               'enable_security_policy_draft', 'graceful_restart_parameters', 'ibgp_auto_mesh',
               'igmp_enable', 'ip_fabric_subnets', 'mac_aging_time', 'mac_limit_control',
               'mac_move_control', 'plugin_tuning', 'rd_cluster_seed', 'supported_device_families',
               'supported_fabric_annotations', 'supported_vendor_hardwares',
               'user_defined_log_statistics'),
        map_props={'user_defined_log_statistics': ('statlist', 'name')},
        refs={'tag': False},
    ),
    "global-vrouter-config": T(
        parents=('global-system-config',),
        props=('ecmp_hashing_include_fields', 'enable_security_logging', 'encapsulation_priorities',
               'encryption_mode', 'encryption_tunnel_endpoints', 'flow_aging_timeout_list',
               'flow_export_rate', 'forwarding_mode', 'linklocal_services',
               'port_translation_pools', 'vxlan_network_identifier_mode'),
        list_props={'encryption_tunnel_endpoints': 'endpoint',
                    'port_translation_pools': 'port_translation_pool'},
        refs={'tag': False},
        enums={'encryption_mode': ('none', 'all'),
               'forwarding_mode': ('l2_l3', 'l2', 'l3'),
               'vxlan_network_identifier_mode': ('configured', 'automatic')},
    ),
    "network-policy": T(
        parents=('project',),
        props=('network_policy_entries',),
        refs={'tag': False},
    ),
    "tag": T(
        parents=('config-root', 'project'),
        props=('tag_id', 'tag_predefined', 'tag_type_name', 'tag_value'),
        refs={'tag': False, 'tag_type': False},
    ),
    "tag-type": T(
        parents=('config-root',),
        props=('tag_type_id',),
        refs={'tag': False},
    ),
    "policy-management": T(
        parents=('config-root', 'project'),
        refs={'tag': False},
    ),
    "application-policy-set": T(
        parents=('policy-management', 'project'),
        props=('all_applications', 'draft_mode_state'),
        refs={'firewall_policy': True, 'global_vrouter_config': False, 'tag': False},
        enums={'draft_mode_state': ('created', 'updated', 'deleted')},
    ),
    "namespace": T(
        parents=('domain',),
        props=('namespace_cidr',),
        refs={'tag': False},
    ),
    "service-appliance-set": T(
        parents=('global-system-config',),
        props=('service_appliance_driver', 'service_appliance_ha_mode',
               'service_appliance_set_properties', 'service_appliance_set_virtualization_type'),
        refs={'tag': False},
        enums={'service_appliance_set_virtualization_type': ('virtual-machine', 'network-namespace',
                                                             'vrouter-instance',
                                                             'physical-device')},
    ),
    "firewall-policy": T(
        parents=('policy-management', 'project'),
        props=('draft_mode_state',),
        refs={'firewall_rule': True, 'tag': False},
        enums={'draft_mode_state': ('created', 'updated', 'deleted')},
    ),
    "firewall-rule": T(
        parents=('policy-management', 'project'),
        props=('action_list', 'direction', 'draft_mode_state', 'endpoint_1', 'endpoint_2',
               'match_tag_types', 'match_tags', 'service'),
        list_props={'match_tags': 'tag_list'},
        refs={'address_group': False, 'tag': False, 'virtual_network': False},
        enums={'direction': ('<', '>', '<>'),
               'draft_mode_state': ('created', 'updated', 'deleted')},
    ),
    "address-group": T(
        parents=('policy-management', 'project'),
        props=('address_group_prefix', 'draft_mode_state'),
        list_props={'address_group_prefix': 'subnet'},
        refs={'tag': False},
        enums={'draft_mode_state': ('created', 'updated', 'deleted')},
    ),
}

# Every resource type the 2005 client knows; the home page links them all (the client learns its
# URIs from there) and the ones missing from TABLE answer a clean 404.
ALL_RESOURCE_TYPES = ('access-control-list', 'address-group', 'alarm', 'alias-ip', 'alias-ip-pool',
                      'analytics-alarm-node', 'analytics-node', 'analytics-snmp-node',
                      'api-access-list', 'application-policy-set', 'bgp-as-a-service', 'bgp-router',
                      'bgpvpn', 'bridge-domain', 'card', 'cli-config', 'config-database-node',
                      'config-node', 'config-root', 'control-node-zone', 'customer-attachment',
                      'data-center-interconnect', 'database-node', 'device-chassis',
                      'device-functional-group', 'device-image', 'devicemgr-node',
                      'discovery-service-assignment', 'domain', 'dsa-rule', 'e2-service-provider',
                      'fabric', 'fabric-namespace', 'feature', 'feature-config', 'feature-flag',
                      'firewall-policy', 'firewall-rule', 'floating-ip', 'floating-ip-pool',
                      'flow-node', 'forwarding-class', 'global-analytics-config',
                      'global-qos-config',
                      'global-system-config', 'global-vrouter-config', 'hardware',
                      'hardware-inventory', 'host-based-service', 'instance-ip', 'intent-map',
                      'interface-route-table', 'job-template', 'link-aggregation-group',
                      'loadbalancer', 'loadbalancer-healthmonitor', 'loadbalancer-listener',
                      'loadbalancer-member', 'loadbalancer-pool', 'logical-interface',
                      'logical-router', 'multicast-policy', 'namespace', 'network-device-config',
                      'network-ipam', 'network-policy', 'node', 'node-profile', 'overlay-role',
                      'peering-policy', 'physical-interface', 'physical-role', 'physical-router',
                      'policy-management', 'port', 'port-group', 'port-profile', 'port-tuple',
                      'project', 'provider-attachment', 'qos-config', 'qos-queue', 'role-config',
                      'role-definition', 'route-aggregate', 'route-table', 'route-target',
                      'routing-instance', 'routing-policy', 'security-group',
                      'security-logging-object', 'service-appliance', 'service-appliance-set',
                      'service-connection-module', 'service-endpoint', 'service-group',
                      'service-health-check', 'service-instance', 'service-object',
                      'service-template', 'sflow-profile', 'storm-control-profile',
                      'structured-syslog-application-record', 'structured-syslog-config',
                      'structured-syslog-hostname-record', 'structured-syslog-message',
                      'structured-syslog-sla-profile', 'sub-cluster', 'subnet', 'tag', 'tag-type',
                      'telemetry-profile', 'virtual-DNS', 'virtual-DNS-record', 'virtual-ip',
                      'virtual-machine', 'virtual-machine-interface', 'virtual-network',
                      'virtual-port-group', 'virtual-router', 'webui-node')


@dataclass(frozen=True)
class TypeSpec:
    """Everything the backend and renderer need to know about one resource type."""

    name: str  # resource type, hyphens: "virtual-network"
    obj_type: str  # object type, underscores: "virtual_network"
    parents: tuple[str, ...]
    props: frozenset[str]
    list_props: dict[str, str]  # field -> wrapper key ("ipam_subnets" -> "subnets")
    map_props: dict[str, tuple[str, str]]  # field -> (wrapper key, element key name)
    refs: dict[str, tuple[str, bool]]  # "network_ipam_refs" -> ("network-ipam", has attr)
    enums: dict[str, tuple]
    children: dict[str, tuple[str, bool]]  # "routing_instances" -> ("routing-instance", derived)
    back_refs: dict[str, str]  # "virtual_machine_interface_back_refs" -> source type

    @property
    def plural(self) -> str:
        return self.name + "s"


def obj_type(resource_type: str) -> str:
    return resource_type.replace("-", "_")


def resource_type(name: str) -> str:
    """Accept either spelling (the server does too) and return the hyphenated one."""
    return name.replace("_", "-")


def _build() -> dict[str, TypeSpec]:
    children: dict[str, dict[str, tuple[str, bool]]] = {t: {} for t in TABLE}
    back_refs: dict[str, dict[str, str]] = {t: {} for t in TABLE}
    for name, t in TABLE.items():
        for parent in t.parents:
            if parent in TABLE:
                derived = obj_type(name) + "s" in TABLE[parent].derived_children
                children[parent][obj_type(name) + "s"] = (name, derived)
        for target in t.refs:
            back_refs[resource_type(target)][obj_type(name) + "_back_refs"] = name
    return {
        name: TypeSpec(
            name=name,
            obj_type=obj_type(name),
            parents=t.parents,
            props=frozenset(t.props) | frozenset(COMMON_PROPS),
            list_props=dict(t.list_props),
            map_props={"annotations": ("key_value_pair", "key"), **t.map_props},
            refs={f"{target}_refs": (resource_type(target), has_attr)
                  for target, has_attr in t.refs.items()},
            enums=dict(t.enums),
            children=children[name],
            back_refs=back_refs[name],
        )
        for name, t in TABLE.items()
    }


TYPES: dict[str, TypeSpec] = _build()
