import json
# (title, type, influxql with GRAFANA placeholders); the Chronograf file is
# derived by substituting its own placeholder syntax.
W = 'WHERE "router" =~ /^$router$/ AND "neighbor" =~ /^$neighbor$/ AND $timeFilter'
panels = [
 ("Fleet: sessions established (1 = up)", "table",
  'SELECT last("established") AS "established", last("session_state") AS "state", last("established_transitions") AS "transitions" FROM "bgp_neighbor" ' + W + ' GROUP BY "router", "network_instance", "neighbor", "peer_as"'),
 ("Fleet: sessions by state", "timeseries",
  'SELECT count("state") FROM (SELECT last("session_state") AS "state" FROM "bgp_neighbor" ' + W + ' GROUP BY time($__interval), "router", "neighbor") GROUP BY time($__interval) fill(none)'),
 ("Flaps: session downs per neighbor", "timeseries",
  'SELECT count("n") FROM "bgp_session_event" ' + W + ' AND ("event" = \'peer_down\' OR "event" = \'cease\') GROUP BY time($__interval), "router", "neighbor" fill(none)'),
 ("Keepalive RTT (µs)", "timeseries",
  'SELECT mean("rtt_us") FROM "bgp_keepalive" ' + W + ' GROUP BY time($__interval), "router", "neighbor" fill(none)'),
 ("Hops to the peer", "timeseries",
  'SELECT last("hops") FROM "bgp_keepalive" ' + W + ' GROUP BY time($__interval), "router", "neighbor" fill(none)'),
 ("Prefixes received per neighbor", "timeseries",
  'SELECT last("prefixes_received") FROM "bgp_neighbor_afi" ' + W + ' GROUP BY time($__interval), "router", "neighbor", "afi_safi" fill(none)'),
 ("BMP: routes per RIB view", "timeseries",
  'SELECT last("prefixes") FROM "bmp_rib" ' + W + ' GROUP BY time($__interval), "router", "neighbor", "rib" fill(none)'),
 ("BMP stats reports", "timeseries",
  'SELECT last("routes_adj_rib_in") AS "adj_rib_in", last("duplicate_prefix_advertisements") AS "dup_adverts" FROM "bmp_stats" ' + W + ' GROUP BY time($__interval), "router", "neighbor" fill(none)'),
 ("Route events per minute", "timeseries",
  'SELECT count("prefix") FROM "bmp_route" ' + W + ' GROUP BY time(1m), "router", "action" fill(none)'),
 ("Recent session events", "table",
  'SELECT "router", "neighbor", "event", "source", "reason", "reason_code", "notification_code", "notification_subcode" FROM "bgp_session_event" ' + W + ' ORDER BY time DESC LIMIT 100'),
 ("Recent origin-AS changes", "table",
  'SELECT "router", "neighbor", "afi_safi", "prefix", "old_origin_as", "new_origin_as" FROM "bgp_origin_change" ' + W + ' ORDER BY time DESC LIMIT 100'),
 ("RPKI: invalid routes per RIB view", "timeseries",
  'SELECT last("rpki_invalid_origin") AS "invalid_origin", last("rpki_invalid_length") AS "invalid_length" FROM "bmp_rib" ' + W + ' GROUP BY time($__interval), "router", "neighbor", "rib" fill(none)'),
 ("Route alerts: opened and cleared", "table",
  'SELECT "router", "neighbor", "kind", "state", "prefix", "watched_prefix", "origin_as", "rib", "detail", "reason" FROM "meshd_alert" ' + W + ' ORDER BY time DESC LIMIT 100'),
]
tvars = [("router", 'SHOW TAG VALUES FROM "bgp_neighbor" WITH KEY = "router"', "bgp_neighbor"),
         ("neighbor", 'SHOW TAG VALUES FROM "bgp_neighbor" WITH KEY = "neighbor" WHERE "router" =~ /^$router$/', "bgp_neighbor")]

g = {"title": "meshd BGP sessions", "uid": "meshd-bgp", "schemaVersion": 39, "version": 1, "editable": True,
     "time": {"from": "now-6h", "to": "now"}, "refresh": "30s", "tags": ["meshd", "bgp"],
     "__inputs": [{"name": "DS_INFLUXDB", "label": "InfluxDB", "type": "datasource", "pluginId": "influxdb"}],
     "templating": {"list": []}, "panels": []}
ds = {"type": "influxdb", "uid": "${DS_INFLUXDB}"}
for name, q, _ in tvars:
    g["templating"]["list"].append({"name": name, "type": "query", "datasource": ds, "query": q, "refresh": 2,
        "multi": True, "includeAll": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"}})
for i, (title, typ, q) in enumerate(panels):
    g["panels"].append({"id": i + 1, "title": title, "type": typ, "datasource": ds,
        "gridPos": {"x": (i % 2) * 12, "y": (i // 2) * 8, "w": 12, "h": 8},
        "targets": [{"refId": "A", "datasource": ds, "rawQuery": True, "resultFormat": "table" if typ == "table" else "time_series", "query": q}]})
json.dump(g, open("/work/main/dashboards/grafana-meshd-bgp.json", "w"), indent=2, ensure_ascii=False)

def chrono(q):
    return (q.replace("$timeFilter", "time > :dashboardTime: AND time < :upperDashboardTime:")
             .replace("$__interval", ":interval:").replace("$router", ":router:").replace("$neighbor", ":neighbor:"))
cells = []
for i, (title, typ, q) in enumerate(panels):
    cq = chrono(q)
    cells.append({"x": (i % 2) * 6, "y": (i // 2) * 4, "w": 6, "h": 4, "name": title,
        "type": "table" if typ == "table" else "line",
        "queries": [{"query": cq, "queryConfig": {"database": "", "measurement": "", "retentionPolicy": "", "fields": [], "tags": {},
            "groupBy": {"time": "", "tags": []}, "areTagsAccepted": False, "rawText": cq, "range": None, "shifts": None},
            "source": "", "type": "influxql"}],
        "axes": {}, "colors": [], "legend": {}, "tableOptions": {}, "fieldOptions": [], "note": "", "noteVisibility": "default"})
templates = []
for name, q, meas in tvars:
    templates.append({"tempVar": ":%s:" % name, "type": "influxql", "label": name, "values": [],
        "query": {"influxql": chrono(q).replace('FROM "bgp_neighbor"', 'ON :database: FROM "bgp_neighbor"'), "db": "meshd", "measurement": meas, "tagKey": name, "fieldKey": ""}})
c = {"meta": {"chronografVersion": "1.10.0", "sources": {}},
     "dashboard": {"id": 0, "name": "meshd BGP sessions", "cells": cells, "templates": templates}}
json.dump(c, open("/work/main/dashboards/chronograf-meshd-bgp.json", "w"), indent=2, ensure_ascii=False)
