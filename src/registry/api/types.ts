/** Wire types of the Consul-compatible API as clients read them (the subset Switchyard's tools use). */

export interface ApiNode {
  ID: string;
  Node: string;
  Address: string;
  Datacenter: string;
  TaggedAddresses: Record<string, string> | null;
  Meta: Record<string, string> | null;
}

export interface ApiService {
  ID: string;
  Service: string;
  Tags: string[] | null;
  Address: string;
  Port: number;
  Meta: Record<string, string> | null;
  Weights?: { Passing: number; Warning: number };
}

export interface ApiCheck {
  Node: string;
  CheckID: string;
  Name: string;
  Status: string;
  Output: string;
  ServiceID: string;
  ServiceName: string;
}

export interface ApiHealthEntry {
  Node: ApiNode;
  Service: ApiService;
  Checks: ApiCheck[];
}

export interface ApiKvEntry {
  Key: string;
  Value: string | null;
  Flags: number;
  CreateIndex: number;
  ModifyIndex: number;
  LockIndex: number;
  Session?: string;
}
