package tidemark.peer;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.format.Json;

/**
 * Debezium's PostgreSQL connector in the embedded engine, with the JSON converter and schemas
 * disabled, writing one {"key":...,"value":...} line per record into DIR/TOPIC.jsonl.
 *
 * <pre>
 * java -jar debezium-peer.jar --out DIR [--stop-after N] [--stop-at-lsn LSN] [--timeout SECONDS]
 *      key=value ...    (Debezium connector properties: database.hostname=..., slot.name=...)
 * </pre>
 *
 * It stops by itself once it has written N records, or a record at or past LSN, or after the
 * timeout (exit 2), and prints its figures as one JSON line on stdout: records, seconds from
 * start to the first record, seconds in all, records per second.
 */
public final class DebeziumPeer {
    private DebeziumPeer() {
    }

    public static void main(String[] args) throws Exception {
        Path out = null;
        long stopAfter = Long.MAX_VALUE;
        long stopAtLsn = Long.MAX_VALUE;
        long timeoutSeconds = 600;
        Properties props = new Properties();
        // What tidemark is measured against: Debezium's PostgreSQL connector as it renders
        // events with the settings tidemark documents (docs/COMPATIBILITY.md).
        props.setProperty("name", "tidemark-peer");
        props.setProperty("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
        props.setProperty("offset.storage", "org.apache.kafka.connect.storage.MemoryOffsetBackingStore");
        props.setProperty("offset.flush.interval.ms", "1000");
        props.setProperty("plugin.name", "pgoutput");
        props.setProperty("publication.autocreate.mode", "disabled");
        props.setProperty("snapshot.mode", "no_data");
        props.setProperty("decimal.handling.mode", "string");
        props.setProperty("binary.handling.mode", "base64");
        props.setProperty("interval.handling.mode", "string");
        props.setProperty("tombstones.on.delete", "false");
        props.setProperty("converter.schemas.enable", "false");
        for (int i = 0; i < args.length; ++i) {
            String a = args[i];
            switch (a) {
                case "--out" -> out = Path.of(args[++i]);
                case "--stop-after" -> stopAfter = Long.parseLong(args[++i]);
                case "--stop-at-lsn" -> stopAtLsn = parseLsn(args[++i]);
                case "--timeout" -> timeoutSeconds = Long.parseLong(args[++i]);
                default -> {
                    int eq = a.indexOf('=');
                    if (eq <= 0) {
                        usage("not a key=value property: " + a);
                    }
                    props.setProperty(a.substring(0, eq), a.substring(eq + 1));
                }
            }
        }
        if (out == null) {
            usage("--out DIR is required");
        }
        Files.createDirectories(out);
        final Path dir = out;
        final long limit = stopAfter;
        final long lsnLimit = stopAtLsn;
        // Guarded by itself: the engine's thread writes, the main thread closes them at the end;
        // records the engine delivers after that are dropped (the run is over).
        final Map<String, OutputStream> files = new HashMap<>();
        final AtomicBoolean closed = new AtomicBoolean();
        final AtomicLong records = new AtomicLong();
        final AtomicLong firstAt = new AtomicLong(-1);
        final CountDownLatch done = new CountDownLatch(1);
        final long start = System.nanoTime();

        DebeziumEngine.ChangeConsumer<ChangeEvent<String, String>> consumer = (batch, committer) -> {
            for (ChangeEvent<String, String> e : batch) {
                if (firstAt.get() < 0) {
                    firstAt.set(System.nanoTime());
                }
                String line = "{\"key\":" + (e.key() == null ? "null" : e.key()) + ",\"value\":"
                        + (e.value() == null ? "null" : e.value()) + "}\n";
                synchronized (files) {
                    if (closed.get()) {
                        break;
                    }
                    try {
                        OutputStream os = files.get(e.destination());
                        if (os == null) {
                            os = Files.newOutputStream(dir.resolve(e.destination() + ".jsonl"));
                            files.put(e.destination(), os);
                        }
                        os.write(line.getBytes(StandardCharsets.UTF_8));
                    }
                    catch (IOException io) {
                        throw new UncheckedIOException(io);
                    }
                }
                committer.markProcessed(e);
                long n = records.incrementAndGet();
                if (n >= limit || lsnOf(e.value()) >= lsnLimit) {
                    done.countDown();
                }
            }
            committer.markBatchFinished();
        };

        ExecutorService executor = Executors.newSingleThreadExecutor();
        try (DebeziumEngine<ChangeEvent<String, String>> engine = DebeziumEngine.create(Json.class)
                .using(props)
                .notifying(consumer)
                .using((success, message, error) -> {
                    if (!success) {
                        System.err.println("debezium-peer: the engine stopped: " + message);
                        if (error != null) {
                            error.printStackTrace();
                        }
                    }
                    done.countDown();
                })
                .build()) {
            executor.execute(engine);
            boolean finished = done.await(timeoutSeconds, TimeUnit.SECONDS);
            long end = System.nanoTime();
            synchronized (files) {
                closed.set(true);
                for (OutputStream os : files.values()) {
                    os.flush();
                    os.close();
                }
            }
            double seconds = (end - start) / 1e9;
            double first = firstAt.get() < 0 ? -1 : (firstAt.get() - start) / 1e9;
            System.out.printf("{\"records\":%d,\"first_record_seconds\":%.3f,\"seconds\":%.3f,\"records_per_second\":%.1f,\"timed_out\":%b}%n",
                    records.get(), first, seconds, seconds > 0 ? records.get() / seconds : 0.0, !finished);
            System.out.flush();
            if (!finished) {
                System.err.println("debezium-peer: timed out after " + timeoutSeconds + " s with " + records.get() + " records");
                System.err.flush();
            }
            // Out at once: closing the engine waits for its tasks, which can hang once a
            // consumer call failed, and nothing of it matters any more.
            Runtime.getRuntime().halt(finished ? 0 : 2);
        }
    }

    private static long parseLsn(String text) {
        int slash = text.indexOf('/');
        if (slash <= 0) {
            usage("not an LSN: " + text);
        }
        return (Long.parseLong(text.substring(0, slash), 16) << 32) | Long.parseLong(text.substring(slash + 1), 16);
    }

    // The source LSN of a value envelope ("lsn":N in its source block), or -1.
    private static long lsnOf(String value) {
        if (value == null) {
            return -1;
        }
        int at = value.indexOf("\"lsn\":");
        if (at < 0) {
            return -1;
        }
        int i = at + 6;
        int j = i;
        while (j < value.length() && Character.isDigit(value.charAt(j))) {
            ++j;
        }
        return j > i ? Long.parseLong(value.substring(i, j)) : -1;
    }

    private static void usage(String problem) {
        System.err.println("debezium-peer: " + problem);
        System.err.println("usage: java -jar debezium-peer.jar --out DIR [--stop-after N] [--stop-at-lsn LSN] [--timeout SECONDS] key=value ...");
        System.exit(1);
    }
}
