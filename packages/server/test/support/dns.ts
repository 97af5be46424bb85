import { createServer, Packet } from "dns2";

/** How the server treats every query: answer from its records, never answer, or answer SERVFAIL. */
export type DnsMode = "answer" | "silent" | "servfail";

export interface TestDns {
  /** `127.0.0.1:<port>`, for DNS_SERVERS. */
  address: string;
  /** Replaces the TXT records of `name`; `[]` removes the name (it then answers NXDOMAIN). */
  setTxt(name: string, values: string[]): void;
  setMode(mode: DnsMode): void;
  /** The names asked so far, in order. */
  readonly queries: string[];
  close(): Promise<void>;
}

/** A real DNS server on 127.0.0.1 (UDP, a free port) serving TXT records the test sets. */
export async function startTestDns(): Promise<TestDns> {
  const txt = new Map<string, string[]>();
  const queries: string[] = [];
  let mode: DnsMode = "answer";

  const server = createServer({
    udp: true,
    handle(request, send) {
      const question = request.questions[0];
      if (!question) return;
      const name = question.name.toLowerCase();
      queries.push(name);
      if (mode === "silent") return;
      const response = Packet.createResponseFromRequest(request);
      const records = txt.get(name);
      if (mode === "servfail") response.header.rcode = Packet.RCODE.SERVFAIL;
      else if (!records) response.header.rcode = Packet.RCODE.NXDOMAIN;
      else if (question.type === Packet.TYPE.TXT) {
        for (const data of records) response.answers.push(Packet.createResourceFromQuestion(question, { ttl: 1, data }));
      }
      void send(response);
    },
  });
  const { udp } = await server.listen({ udp: { port: 0, address: "127.0.0.1" } });
  return {
    address: `127.0.0.1:${udp!.port}`,
    setTxt(name, values) {
      if (values.length === 0) txt.delete(name);
      else txt.set(name, values);
    },
    setMode(next) {
      mode = next;
    },
    queries,
    close: () => server.close(),
  };
}
