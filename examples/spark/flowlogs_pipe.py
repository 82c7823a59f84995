#!/usr/bin/env python3
"""Judge a large account's VPC Flow Logs on Spark with sgplane.

Spark reads the flow-log Parquet partitions as AWS delivers them; each Spark
partition's records go, as text with a header line of their field names,
through

    sgplane -c policy.toml replay - --verdicts - --json

on the executor that holds them (mapPartitions, the policy and the binary
shipped to every executor with SparkContext.addFile). With --files, each
input file (text, gzip or Parquet, as S3 holds it) is piped whole instead. sgplane writes one
JSON verdict line per judged record on stdout and the partition's summary
on stderr; this script gathers the summaries' counts, keeps the records
whose recorded action differs from sgplane's verdict, and writes every
verdict as Parquet.

Runs in Spark's local mode where pyspark and Java are installed:

    cargo build --release
    python3 examples/spark/flowlogs_pipe.py --make-demo /tmp/fl 200000
    python3 examples/spark/flowlogs_pipe.py \
        --policy tests/data/flowlogs/policy.toml \
        --sgplane target/release/sgplane \
        --out /tmp/fl-verdicts /tmp/fl

On a cluster, give --master (or run it with spark-submit) and paths the
executors can read (s3a://bucket/AWSLogs/...); the binary must run on the
executors' OS.
"""

import argparse
import json
import os
import stat
import subprocess
import sys
import threading
import time

from pyspark import SparkFiles, StorageLevel
from pyspark.sql import SparkSession

# The version 2 default format; a Parquet file may hold more (custom formats).
DEFAULT_FIELDS = [
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport",
    "dstport", "protocol", "packets", "bytes", "start", "end", "action",
    "log-status",
]

# Every field AWS documents; other columns (Hive partitions such as
# aws-region or year) are not sent to sgplane.
KNOWN_FIELDS = set(DEFAULT_FIELDS) | {
    "vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr",
    "pkt-dstaddr", "region", "az-id", "sublocation-type", "sublocation-id",
    "pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction",
    "traffic-path", "ecs-cluster-arn", "ecs-cluster-name",
    "ecs-container-instance-arn", "ecs-container-instance-id",
    "ecs-container-id", "ecs-second-container-id", "ecs-service-name",
    "ecs-task-definition-arn", "ecs-task-arn", "ecs-task-id", "reject-reason",
    "resource-id", "encryption-status",
}


def differs(line):
    """Whether a verdict line's verdict differs from its recorded action
    (by its text: no JSON decoding for the many that agree)."""
    allowed = '"verdict":"allow"' in line
    accepted = '"recorded_action":"ACCEPT"' in line
    return allowed != accepted


def judge_stream(chunks, policy_name, binary_name, keep_all):
    """Runs sgplane over one stream of flow-log bytes (text lines with their
    header, or a whole file as S3 holds it: text, gzip or Parquet).

    Yields ("differ", json line) for every record whose verdict differs from
    its recorded action, ("verdict", json line) for every judged record when
    keep_all, and one ("summary", json) for the stream.
    """
    binary = SparkFiles.get(binary_name)
    policy = SparkFiles.get(policy_name)
    mode = os.stat(binary).st_mode
    if not mode & stat.S_IXUSR:
        os.chmod(binary, mode | stat.S_IXUSR)
    proc = subprocess.Popen(
        [binary, "-c", policy, "replay", "-", "--verdicts", "-", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    def feed():
        try:
            for chunk in chunks:
                proc.stdin.write(chunk)
        finally:
            proc.stdin.close()

    writer = threading.Thread(target=feed)
    writer.start()
    err = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))
    reader.start()
    for line in proc.stdout:
        line = line.decode()
        if differs(line):
            yield ("differ", line)
        if keep_all:
            yield ("verdict", line)
    writer.join()
    reader.join()
    code = proc.wait()
    if code != 0:
        raise RuntimeError(f"sgplane exited {code}: {err[0].decode()[-2000:]}")
    yield ("summary", err[0].decode())


def with_header(fields):
    """A partition's text lines as one flow log: its header line first."""
    header = (" ".join(fields) + "\n").encode()

    def chunks(lines):
        yield header
        batch = []
        for line in lines:
            batch.append(line)
            if len(batch) == 4096:
                yield ("\n".join(batch) + "\n").encode()
                batch = []
        if batch:
            yield ("\n".join(batch) + "\n").encode()

    return chunks


def make_demo(spark, path, n):
    """Writes n synthetic default-format records as AWS delivers Parquet
    (INT_32 ports and protocol, INT_64 counts and times, strings, Gzip), in
    Hive-compatible hourly partitions, for trying this script."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegerType, LongType

    df = spark.range(n).select(
        F.lit(2).cast(IntegerType()).alias("version"),
        F.lit("123456789010").alias("account_id"),
        F.when(F.col("id") % 3 == 2, "eni-db").otherwise("eni-web").alias("interface_id"),
        F.concat_ws(".", F.lit("10"), (F.col("id") % 4).cast("string"),
                    ((F.col("id") * 7) % 250 + 1).cast("string"),
                    ((F.col("id") * 13) % 250 + 1).cast("string")).alias("srcaddr"),
        F.when(F.col("id") % 3 == 2, "10.0.2.20").otherwise("10.0.1.10").alias("dstaddr"),
        (F.col("id") % 60000 + 1024).cast(IntegerType()).alias("srcport"),
        F.element_at(F.array(F.lit(443), F.lit(22), F.lit(5432)),
                     (F.col("id") % 3 + 1).cast(IntegerType())).cast(IntegerType()).alias("dstport"),
        F.lit(6).cast(IntegerType()).alias("protocol"),
        (F.col("id") % 50 + 1).cast(LongType()).alias("packets"),
        (F.col("id") % 9000 + 60).cast(LongType()).alias("bytes"),
        (F.lit(1700000000) + F.col("id") / 1000).cast(LongType()).alias("start"),
        (F.lit(1700000060) + F.col("id") / 1000).cast(LongType()).alias("end"),
        F.when(F.col("id") % 10 == 7, "REJECT").otherwise("ACCEPT").alias("action"),
        F.lit("OK").alias("log_status"),
        F.lit("123456789010").alias("aws-account-id"),
        F.lit("vpcflowlogs").alias("aws-service"),
        F.lit("us-east-1").alias("aws-region"),
        F.lit("2023").alias("year"),
        F.lit("11").alias("month"),
        F.lit("14").alias("day"),
        (F.col("id") % 4).cast("string").alias("hour"),
    )
    (df.write.mode("overwrite")
       .option("compression", "gzip")
       .partitionBy("aws-account-id", "aws-service", "aws-region", "year", "month", "day", "hour")
       .parquet(path))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="*", help="flow-log Parquet directories or files, or text files")
    ap.add_argument("--policy", help="the sgplane policy the records are judged under")
    ap.add_argument("--sgplane", default="target/release/sgplane", help="the sgplane binary")
    ap.add_argument("--files", action="store_true",
                    help="pipe each input file whole, as S3 holds it (text, gzip or Parquet), "
                         "instead of reading Parquet partitions with Spark")
    ap.add_argument("--out", help="write every verdict here as Parquet")
    ap.add_argument("--master", default="local[*]")
    ap.add_argument("--partitions", type=int, help="repartition the records into this many")
    ap.add_argument("--make-demo", nargs=2, metavar=("DIR", "N"),
                    help="write N synthetic records as AWS Parquet into DIR and stop")
    a = ap.parse_args()

    spark = (SparkSession.builder.master(a.master).appName("sgplane-flowlogs")
             .config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("WARN")
    if a.make_demo:
        make_demo(spark, a.make_demo[0], int(a.make_demo[1]))
        print(f"wrote {a.make_demo[1]} records under {a.make_demo[0]}")
        return 0
    if not a.policy or not a.inputs:
        ap.error("--policy and at least one input are needed")
    sc = spark.sparkContext
    sc.addFile(os.path.abspath(a.policy))
    sc.addFile(os.path.abspath(a.sgplane))
    policy_name, binary_name = os.path.basename(a.policy), os.path.basename(a.sgplane)

    started = time.time()
    keep = bool(a.out)
    if a.files:
        # One sgplane per file, fed the file's bytes: each keeps its header
        # and its compression, and sgplane recognises what it is.
        files = sc.binaryFiles(",".join(a.inputs))
        if a.partitions:
            files = files.repartition(a.partitions)
        judged = files.flatMap(lambda kv: judge_stream([kv[1]], policy_name, binary_name, keep))
    else:
        from pyspark.sql import functions as F
        df = spark.read.parquet(*a.inputs)
        cols = [c for c in df.columns if c.replace("_", "-") in KNOWN_FIELDS]
        fields = [c.replace("_", "-") for c in cols]
        # Each row as its text line, made in the JVM (null as "-", as AWS
        # writes an absent field in text).
        line = F.concat_ws(" ", *[F.coalesce(F.col(c).cast("string"), F.lit("-")) for c in cols])
        lines = df.select(line.alias("line")).rdd.map(lambda r: r[0])
        if a.partitions:
            lines = lines.repartition(a.partitions)
        judged = lines.mapPartitions(with_header(fields)).mapPartitions(
            lambda it: judge_stream(it, policy_name, binary_name, keep))
    judged = judged.persist(StorageLevel.MEMORY_AND_DISK)
    summaries = [json.loads(s) for k, s in judged.filter(lambda kv: kv[0] == "summary").collect()]
    elapsed = time.time() - started
    differing = judged.filter(lambda kv: kv[0] == "differ").map(lambda kv: json.loads(kv[1]))

    total = {k: sum(s[k] for s in summaries) for k in
             ("records", "judged", "agreeing", "differing", "nodata", "skipdata", "malformed")}
    print(json.dumps({"partitions": len(summaries), **total,
                      "elapsed_secs": round(elapsed, 3),
                      "records_per_sec": round(total["records"] / elapsed) if elapsed else None}))
    by_rule = differing.map(lambda v: ((v["verdict"], v["reason"], v["rule"]), 1)) \
                       .reduceByKey(lambda x, y: x + y).collect()
    for (verdict, reason, rule), n in sorted(by_rule, key=lambda kv: -kv[1])[:20]:
        print(f"differing: {n} sgplane {verdict} {reason} {rule or '-'}")
    for v in differing.take(10):
        print("  ", json.dumps(v))
    if a.out:
        lines_out = judged.filter(lambda kv: kv[0] == "verdict").map(lambda kv: kv[1])
        spark.read.json(lines_out).write.mode("overwrite").parquet(a.out)
        print(f"verdicts written to {a.out}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
