/**
 * The parts of Docker's `GET /containers/{id}/json` (inspect) answer that registrator reads.
 * Field names are Docker's JSON names; every field is optional or nullable the way the Engine
 * API leaves it (Env, Labels, Ports and Networks can be null).
 */
export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

export interface ContainerNetwork {
  IPAddress?: string;
}

export interface ContainerInspect {
  Id: string;
  /** With Docker's leading slash: "/web-1". */
  Name: string;
  Config: {
    Image: string;
    Hostname?: string;
    Env?: string[] | null;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, unknown> | null;
    /** The image's HEALTHCHECK or --health-* options; Test ["NONE"] turns an image's check off. Durations in ns. */
    Healthcheck?: { Test?: string[] | null; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number } | null;
    /** What `docker stop` sends first ("SIGTERM" when unset; a name or a number), and how long it waits (s) before SIGKILL. */
    StopSignal?: string | null;
    StopTimeout?: number | null;
  };
  HostConfig?: { NetworkMode?: string } | null;
  NetworkSettings?: {
    IPAddress?: string;
    Ports?: Record<string, PortBinding[] | null> | null;
    Networks?: Record<string, ContainerNetwork> | null;
  } | null;
  State?: { Running?: boolean; ExitCode?: number; Status?: string; Health?: ContainerHealth | null } | null;
}

/** Docker's health state of a container with a HEALTHCHECK. */
export interface ContainerHealth {
  /** starting, healthy or unhealthy. */
  Status: string;
  FailingStreak?: number;
  /** The last few probes, oldest first. */
  Log?: { ExitCode?: number; Output?: string }[] | null;
}

/** One registrator "service": what gets registered for one container port. */
export interface Service {
  readonly id: string;
  readonly name: string;
  readonly port: number;
  readonly ip: string;
  readonly tags: readonly string[];
  /** Remaining SERVICE_* metadata, lower-case keys (becomes Consul Meta and drives the check). */
  readonly attrs: Readonly<Record<string, string>>;
  readonly origin: ServiceOrigin;
  /** With -healthcheck, for a container with a HEALTHCHECK: the TTL check that mirrors its status. */
  readonly health?: HealthCheckSpec;
}

export interface HealthCheckSpec {
  readonly checkId: string;
  /** Go duration of the TTL (a few of Docker's probe intervals: registrator refreshes it every interval). */
  readonly ttl: string;
  /** How often registrator re-reads the status and refreshes the TTL (ms): Docker's probe interval. */
  readonly refreshMs: number;
}

export interface ServiceOrigin {
  readonly containerId: string;
  /** Without Docker's leading slash. */
  readonly containerName: string;
  readonly exposedPort: string;
  readonly portType: string;
  readonly hostPort: string;
  readonly hostIp: string;
  readonly exposedIp: string;
}

/** The registrator flags that shape the mapping. */
export interface MappingConfig {
  /** `-ip`: forces the IP registered for published ports ("" = off). */
  readonly hostIp: string;
  readonly internal: boolean;
  readonly explicit: boolean;
  /** `-useIpFromLabel` ("" = off). */
  readonly useIpFromLabel: string;
  /** `-tags`, rendered for one container (master runs it as a Go template against the inspect object). */
  readonly forceTags: (container: ContainerInspect) => string;
  /** -healthcheck (Switchyard's extension; absent: off). */
  readonly healthcheck?: boolean;
}

/** Facts about the host the mapping needs, gathered by the caller so that the mapping stays pure. */
export interface HostContext {
  /** os.hostname() of the registrator process ("" allowed: then the host IP of the binding is used). */
  readonly hostname: string;
  /** What the hostname resolves to (used for bindings on 0.0.0.0); undefined when it does not resolve. */
  readonly hostnameIp?: string | undefined;
  /** For `--net=container:<id>`: the other container's inspect answer, when it could be read. */
  readonly networkContainer?: ContainerInspect | undefined;
}
