"""The template against AWS rules that cfn-lint, sam validate and checkov miss.

Each rule is in infra/AWS-BEHAVIOUR.md with its AWS source. The roles are
held to infra/iam-actions.json, the actions tests/tests/permissions.rs sees
each function call on the wire. Each test checks
the shipped template, then a copy broken the way a real mistake would break
it, so a rule that stopped seeing anything would fail here too.

Run: python3 infra/template_test.py (infra/lint.sh runs it; needs cfn-lint,
whose loader reads !Ref, !GetAtt and !If).
"""

import copy
import datetime
import math
import os
import unittest

from cfnlint.decode import cfn_yaml

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "template.yaml")
DAY = 86400


def load():
    return copy.deepcopy(dict(cfn_yaml.load(TEMPLATE)))


def resources(template, kind):
    return {
        name: r for name, r in template["Resources"].items() if r.get("Type") == kind
    }


def referenced(value):
    """The resource a Ref or GetAtt names, or None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return target[0] if isinstance(target, list) else target.split(".")[0]
    return None


def as_list(value):
    return value if isinstance(value, list) else [value]


# --- the rules: each returns what is wrong, an empty list when nothing ------


def alarm_topic_problems(template):
    """Alarms publish only to topics unencrypted or under a customer managed
    key that lets cloudwatch.amazonaws.com Decrypt and GenerateDataKey*,
    with rotation on."""
    problems = []
    topics = resources(template, "AWS::SNS::Topic")
    keys = resources(template, "AWS::KMS::Key")
    for alarm_name, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        props = alarm.get("Properties", {})
        for field in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            for action in as_list(props.get(field, [])):
                topic_name = referenced(action)
                if topic_name not in topics:
                    continue
                key = topics[topic_name].get("Properties", {}).get("KmsMasterKeyId")
                if key is None:
                    continue
                key_name = referenced(key)
                if key_name not in keys:
                    problems.append(
                        f"{alarm_name} publishes to {topic_name}, encrypted with {key!r}, "
                        "which is not a key of this template CloudWatch may use"
                    )
                    continue
                key_props = keys[key_name]["Properties"]
                if key_props.get("EnableKeyRotation") is not True:
                    problems.append(f"{key_name} has no key rotation")
                granted = set()
                for statement in as_list(key_props["KeyPolicy"]["Statement"]):
                    principal = statement.get("Principal", {})
                    services = as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
                    if statement.get("Effect") == "Allow" and "cloudwatch.amazonaws.com" in services:
                        granted.update(as_list(statement.get("Action", [])))
                for needed in ("kms:Decrypt", "kms:GenerateDataKey"):
                    if not any(
                        g == needed or g == "kms:*" or (g.endswith("*") and needed.startswith(g[:-1]))
                        for g in granted
                    ):
                        problems.append(
                            f"{key_name} does not let cloudwatch.amazonaws.com {needed} "
                            f"(the key of {topic_name}, which {alarm_name} publishes to)"
                        )
    return sorted(set(problems))


def function_url_problems(template):
    """A function URL with AuthType NONE needs, for its function and under
    its condition, lambda:InvokeFunctionUrl (FunctionUrlAuthType NONE) and
    lambda:InvokeFunction (InvokedViaFunctionUrl) for everyone."""
    problems = []
    permissions = resources(template, "AWS::Lambda::Permission").values()
    for url_name, url in resources(template, "AWS::Lambda::Url").items():
        props = url["Properties"]
        if props.get("AuthType") != "NONE":
            continue
        function = referenced(props["TargetFunctionArn"])
        granted = {
            p["Properties"]["Action"]
            for p in permissions
            if referenced(p["Properties"].get("FunctionName")) == function
            and p["Properties"].get("Principal") == "*"
            and p.get("Condition") == url.get("Condition")
            and (
                p["Properties"].get("FunctionUrlAuthType") == "NONE"
                or p["Properties"].get("InvokedViaFunctionUrl") is True
            )
        }
        for needed in ("lambda:InvokeFunctionUrl", "lambda:InvokeFunction"):
            if needed not in granted:
                problems.append(f"{url_name} is public but {function} does not allow {needed}")
    return problems


def functions_on_queues(template):
    """(function, its timeout, queue) for each SQS event source."""
    globals_timeout = template.get("Globals", {}).get("Function", {}).get("Timeout", 3)
    found = []
    for name, function in resources(template, "AWS::Serverless::Function").items():
        props = function["Properties"]
        for event in props.get("Events", {}).values():
            if event.get("Type") == "SQS":
                found.append((name, props.get("Timeout", globals_timeout), referenced(event["Properties"]["Queue"])))
    return found


def visibility_problems(template):
    """Each queue a function consumes hides a message at least six times the
    function's timeout."""
    problems = []
    queues = resources(template, "AWS::SQS::Queue")
    for function, timeout, queue in functions_on_queues(template):
        visibility = queues[queue]["Properties"].get("VisibilityTimeout", 30)
        if visibility < 6 * timeout:
            problems.append(
                f"{queue} hides a message {visibility} s, less than 6 x {function}'s {timeout} s"
            )
    return problems


def payload_expiry_problems(template):
    """Payload objects outlive the longest a pointer can: the queue's
    retention, then the dead-letter queue's, then the queue's again after one
    redrive."""
    queues = resources(template, "AWS::SQS::Queue")
    bucket = template["Resources"]["PayloadBucket"]["Properties"]
    days = [
        rule["ExpirationInDays"]
        for rule in bucket["LifecycleConfiguration"]["Rules"]
        if rule.get("Status") == "Enabled" and "ExpirationInDays" in rule
    ]
    queue = queues["NotificationQueue"]["Properties"]
    dead = queues[referenced(queue["RedrivePolicy"]["deadLetterTargetArn"])]["Properties"]
    longest = 2 * queue.get("MessageRetentionPeriod", 4 * DAY) + dead.get("MessageRetentionPeriod", 4 * DAY)
    needed = math.ceil(longest / DAY)
    return [
        f"PayloadBucket expires objects after {d} days; a pointer can live {needed}"
        for d in days
        if d < needed
    ]


def steps_ttl_problems(template):
    """A completed step is remembered at least as long as its notification
    can come back: the queue's retention, then the dead-letter queue's (a
    redrive); the parameter's floor and default both hold it."""
    queues = resources(template, "AWS::SQS::Queue")
    queue = queues["NotificationQueue"]["Properties"]
    dead = queues[referenced(queue["RedrivePolicy"]["deadLetterTargetArn"])]["Properties"]
    needed = queue.get("MessageRetentionPeriod", 4 * DAY) + dead.get("MessageRetentionPeriod", 4 * DAY)
    parameter = template["Parameters"]["StepsTtlSeconds"]
    problems = [
        f"StepsTtlSeconds {name} {parameter.get(name, 0)} is under the queues' retention together ({needed})"
        for name in ("MinValue", "Default")
        if parameter.get(name, 0) < needed
    ]
    variables = template["Resources"]["ProcessorFunction"]["Properties"]["Environment"]["Variables"]
    if "StepsTtlSeconds" not in str(variables.get("STEPS_TTL_SECONDS")):
        problems.append("ProcessorFunction does not pass StepsTtlSeconds as STEPS_TTL_SECONDS")
    return problems


IAM_ACTIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "iam-actions.json")

# What a SAM policy template grants, for the ones the functions use that are
# not the code's own calls (the SQS event source's, run by Lambda itself).
EVENT_SOURCE_POLICIES = {"SQSPollerPolicy"}


def role_actions(template, function):
    """The actions the function's own statements grant (every !If branch
    counted), without the event source's policy templates."""
    actions = set()

    def walk(policy):
        if isinstance(policy, dict) and "Fn::If" in policy:
            for branch in policy["Fn::If"][1:]:
                walk(branch)
        elif isinstance(policy, dict) and "Statement" in policy:
            for statement in as_list(policy["Statement"]):
                if statement.get("Effect") == "Allow":
                    actions.update(as_list(statement["Action"]))
        elif isinstance(policy, dict) and set(policy) <= EVENT_SOURCE_POLICIES:
            pass
        elif isinstance(policy, dict) and policy.get("Ref") == "AWS::NoValue":
            pass
        else:
            raise AssertionError(f"{function}: a policy this test cannot read: {policy!r}")

    for policy in template["Resources"][function]["Properties"].get("Policies", []):
        walk(policy)
    return actions


def role_problems(template, seen):
    """Each role grants exactly what its function's code was seen calling."""
    problems = []
    for function, name in (("ReceiverFunction", "webhook-receiver"), ("ProcessorFunction", "topic-processor")):
        granted = role_actions(template, function)
        called = set(seen[name])
        for action in sorted(granted - called):
            problems.append(f"{function} grants {action}, which its code was never seen calling")
        for action in sorted(called - granted):
            problems.append(f"{function} does not grant {action}, which its code calls")
    return problems


# The Firehose Prefix the processor's lines are written for
# (intercom_webhook::destination::stream_prefix; replay reads these keys),
# after ArchivePrefix, and the fields of each line it partitions by.
# No topic: every topic of a day shares the partition, so the stream
# writes one object per interval (Firehose and S3 bill each), not one per
# topic; replay picks a topic's lines out of the day.
STREAM_PREFIX = "stream/app_id=!{partitionKeyFromQuery:app_id}/dt=!{partitionKeyFromQuery:dt}/"
STREAM_QUERY_FIELDS = {"app_id": "app_id", "dt": "dt"}


def archive_stream_problems(template):
    """The archive stream writes the partitions replay and Athena read:
    dynamic partitioning on, keys from each line's own fields, the Prefix
    the processor writes for, gzip (replay reads .gz), in the archive
    bucket, and the processor told its name."""
    problems = []
    stream = template["Resources"].get("ArchiveStream")
    if stream is None:
        return ["no ArchiveStream"]
    s3 = stream["Properties"]["ExtendedS3DestinationConfiguration"]
    prefix = s3.get("Prefix", {})
    text = prefix.get("Fn::Sub") if isinstance(prefix, dict) else prefix
    if text != "${ArchivePrefix}" + STREAM_PREFIX:
        problems.append(f"ArchiveStream writes under {text!r}, not ArchivePrefix + {STREAM_PREFIX!r}")
    if not s3.get("DynamicPartitioningConfiguration", {}).get("Enabled"):
        problems.append("ArchiveStream does not partition dynamically")
    query = None
    for processor in s3.get("ProcessingConfiguration", {}).get("Processors", []):
        for parameter in processor.get("Parameters", []):
            if parameter["ParameterName"] == "MetadataExtractionQuery":
                query = parameter["ParameterValue"]
    pairs = {}
    for pair in (query or "").strip("{} ").split(","):
        if ":" in pair:
            key, field = pair.split(":", 1)
            pairs[key.strip()] = field.strip().lstrip(".")
    if pairs != STREAM_QUERY_FIELDS:
        problems.append(f"ArchiveStream's partition keys are {pairs}, not {STREAM_QUERY_FIELDS}")
    if s3.get("CompressionFormat") != "GZIP":
        problems.append("ArchiveStream does not gzip its objects")
    if s3.get("BucketARN") != {"Fn::GetAtt": ["ArchiveBucket", "Arn"]}:
        problems.append("ArchiveStream does not write to the ArchiveBucket")
    env = template["Resources"]["ProcessorFunction"]["Properties"]["Environment"]["Variables"]
    if env.get("ARCHIVE_STREAM") != {"Fn::If": ["UseArchiveStream", {"Ref": "ArchiveStream"}, {"Ref": "AWS::NoValue"}]}:
        problems.append("ProcessorFunction's ARCHIVE_STREAM is not the ArchiveStream")
    return problems


DEPLOYED_RS = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "crates", "intercom-dev", "src", "deployed.rs"
)


def check_stack_problems(template):
    """`intercom-dev check --stack` finds what it reads: every output it
    names (`output("...")` in deployed.rs) declared with no condition, and
    every alarm acting on AlarmTopic, as it finds alarms by their action."""
    import re

    with open(DEPLOYED_RS) as f:
        wanted = re.findall(r'output\("([A-Za-z]+)"\)', f.read())
    problems = []
    if not wanted:
        problems.append("deployed.rs names no output")
    outputs = template.get("Outputs", {})
    for name in wanted:
        if name not in outputs:
            problems.append(f"no {name} output, which check --stack reads")
        elif "Condition" in outputs[name]:
            problems.append(f"the {name} output has a condition; check --stack needs it always")
    for alarm_name, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        actions = as_list(alarm.get("Properties", {}).get("AlarmActions", []))
        if "AlarmTopic" not in [referenced(a) for a in actions]:
            problems.append(f"{alarm_name} does not act on AlarmTopic; check --stack would not see it")
    return problems


RECEIVER_HANDLER_RS = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "functions", "webhook-receiver", "src", "handler.rs"
)


def alarmed_answers_problems(template, handler_text=None):
    """With METRICS=alarms the receiver counts Requests only for the answers
    in ALARMED_ANSWERS (handler.rs): every alarm on the receiver's Requests
    reads one of them, in the functions' namespace, and each is read by an
    alarm (an answer counted for no alarm is a metric billed for nothing)."""
    import re

    if handler_text is None:
        with open(RECEIVER_HANDLER_RS) as f:
            handler_text = f.read()
    found = re.search(r"pub const ALARMED_ANSWERS: \[&str; \d+\] = \[([^\]]*)\];", handler_text)
    if not found:
        return ["handler.rs declares no ALARMED_ANSWERS"]
    counted = set(re.findall(r'"([a-z_]+)"', found.group(1)))
    problems = []
    read = set()
    for name, alarm in sorted(resources(template, "AWS::CloudWatch::Alarm").items()):
        properties = alarm.get("Properties", {})
        if properties.get("MetricName") != "Requests":
            continue
        dimensions = {d["Name"]: d["Value"] for d in properties.get("Dimensions", [])}
        answer = dimensions.get("Answer")
        read.add(answer)
        if referenced(properties.get("Namespace")) != "MetricsNamespace":
            problems.append(f"{name} reads Requests outside the functions' MetricsNamespace")
        if referenced(dimensions.get("Function")) != "ReceiverFunction":
            problems.append(f"{name} reads Requests of another function than the receiver")
        if answer not in counted:
            problems.append(f"{name} reads Requests for {answer!r}, which METRICS=alarms does not count")
    for answer in sorted(counted - read):
        problems.append(f"ALARMED_ANSWERS counts {answer!r}, which no alarm reads")
    return problems


def small_team_default_problems(template):
    """The defaults cut to what a small team pays for (README, What it
    costs) without losing a guarantee: X-Ray PassThrough, no second archive
    beside the S3 one, the ticket example rule off, no dashboard (and only
    the metrics the alarms read); and still a FIFO queue, idempotency, a
    dead-letter queue behind the queue, the S3 archive, and no alarm hanging
    on the dashboard."""
    problems = []
    params = template["Parameters"]
    wanted = {
        "Tracing": "PassThrough",
        "EventBusArchive": "disabled",
        "TicketRuleExample": "disabled",
        "QueueType": "fifo",
        "Idempotency": "enabled",
        "Archive": "enabled",
        "EventBus": "enabled",
        "Metrics": "enabled",
        "Dashboard": "disabled",
    }
    for name, value in wanted.items():
        default = params.get(name, {}).get("Default")
        if default != value:
            problems.append(f"{name} defaults to {default!r}, not {value!r}")
    conditions = {
        "NotificationBusArchive": "UseBusArchive",
        "TicketEventsRule": "UseTicketRuleExample",
        "TicketEventsLogGroup": "UseTicketRuleExample",
        "TicketEventsLogPolicy": "UseTicketRuleExample",
        "HealthDashboard": "UseDashboard",
    }
    for name, condition in conditions.items():
        found = template["Resources"].get(name, {}).get("Condition")
        if found != condition:
            problems.append(f"{name} is under {found!r}, not {condition!r}")
    # The alarms, not the dashboard, watch for loss: none hangs on it.
    for name, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::CloudWatch::Alarm" and resource.get("Condition") == "UseDashboard":
            problems.append(f"{name} is under 'UseDashboard': an alarm must not hang on the dashboard")
    # The 429 metric filter publishes only when a 429 is logged (a calm
    # month bills no hour of it), and its alarm takes no data as calm.
    for transformation in template["Resources"]["ApiThrottledMetric"]["Properties"]["MetricTransformations"]:
        if "DefaultValue" in transformation:
            problems.append("ApiThrottledMetric has a DefaultValue: Throttled429 is published every hour")
    if template["Resources"]["ApiThrottledAlarm"]["Properties"].get("TreatMissingData") != "notBreaching":
        problems.append("ApiThrottledAlarm does not treat missing data as not breaching")
    # Without the dashboard the functions still publish what the alarms
    # read (METRICS=alarms), and everything with it (on).
    metrics = template["Globals"]["Function"]["Environment"]["Variables"].get("METRICS")
    if metrics != {"Fn::If": ["UseMetrics", {"Fn::If": ["UseDashboard", "on", "alarms"]}, "off"]}:
        problems.append(f"the functions' METRICS is {metrics!r}, not on/alarms/off by the dashboard")
    queue = template["Resources"]["NotificationQueue"]["Properties"]
    if referenced(queue.get("RedrivePolicy", {}).get("deadLetterTargetArn")) != "DeadLetterQueue":
        problems.append("NotificationQueue has no dead-letter queue")
    return problems


def reserved_concurrency_problems(template):
    """A function's reserved concurrency, when set, at least the
    MaximumConcurrency of every SQS event source on it (Lambda otherwise
    throttles the poller's invocations, and messages reach the dead-letter
    queue unprocessed). A literal is compared; a parameter set through
    !If [condition, !Ref P, NoValue] must be held by a Rule asserting
    !Equals [P, the maximum's parameter] (CloudFormation rules cannot compare
    numbers), and its default must pass too."""
    problems = []
    parameters = template.get("Parameters", {})
    rules = template.get("Rules", {})

    def parameter(value):
        if isinstance(value, dict) and "Fn::If" in value:
            value = value["Fn::If"][1]
        name = referenced(value)
        return name if name in parameters else None

    def equal_asserted(a, b):
        for rule in rules.values():
            for assertion in as_list(rule.get("Assertions", [])):
                equals = assertion.get("Assert", {}).get("Fn::Equals")
                if equals and sorted(referenced(v) or "" for v in equals) == sorted([a, b]):
                    return True
        return False

    for name, function in resources(template, "AWS::Serverless::Function").items():
        props = function.get("Properties", {})
        reserved = props.get("ReservedConcurrentExecutions")
        if reserved is None:
            continue
        for event_name, event in props.get("Events", {}).items():
            if event.get("Type") != "SQS":
                continue
            maximum = event.get("Properties", {}).get("ScalingConfig", {}).get("MaximumConcurrency")
            if maximum is None:
                continue
            reserved_p, maximum_p = parameter(reserved), parameter(maximum)
            if isinstance(reserved, int) and isinstance(maximum, int):
                if reserved < maximum:
                    problems.append(f"{name} reserves {reserved}, below {event_name}'s MaximumConcurrency {maximum}")
            elif reserved_p and maximum_p:
                default = parameters[reserved_p].get("Default")
                if not equal_asserted(reserved_p, maximum_p):
                    problems.append(
                        f"no rule holds {reserved_p} equal to {maximum_p}, {name}'s {event_name} MaximumConcurrency"
                    )
                if default not in (-1, "-1") and str(default) != str(parameters[maximum_p].get("Default")):
                    problems.append(f"{reserved_p}'s default {default} is not {maximum_p}'s")
            else:
                problems.append(f"{name}'s reserved concurrency and {event_name}'s maximum cannot be compared")
    return problems


def alarm_key_problems(template):
    """A key statement granting cloudwatch.amazonaws.com holds it to this
    account (aws:SourceAccount) and to its alarms (aws:SourceArn, an alarm
    ARN of this account): the confused deputy."""
    problems = []
    for key_name, key in resources(template, "AWS::KMS::Key").items():
        for statement in as_list(key["Properties"]["KeyPolicy"]["Statement"]):
            principal = statement.get("Principal", {})
            services = as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
            if "cloudwatch.amazonaws.com" not in services:
                continue
            condition = statement.get("Condition", {})
            account = condition.get("StringEquals", {}).get("aws:SourceAccount")
            if account != {"Ref": "AWS::AccountId"}:
                problems.append(f"{key_name} grants CloudWatch without aws:SourceAccount = the account")
            arn = condition.get("ArnLike", {}).get("aws:SourceArn") or condition.get("ArnEquals", {}).get(
                "aws:SourceArn"
            )
            text = arn.get("Fn::Sub", "") if isinstance(arn, dict) else str(arn or "")
            if ":cloudwatch:" not in text or "${AWS::AccountId}:alarm:" not in text:
                problems.append(f"{key_name} grants CloudWatch without aws:SourceArn naming this account's alarms")
    return problems


def silence_expressions(template, parameters):
    """The silence alarm's metric math, its !Sub variables resolved with
    `parameters` (the template's defaults where absent): [(id, expression)]."""
    declared = template["Parameters"]
    value = lambda name: str(parameters.get(name, declared[name].get("Default")))
    every_day = value("SilenceAlarmDays") == "everyday"

    def resolve(node):
        if isinstance(node, str):
            return node
        if "Fn::If" in node:
            condition, yes, no = node["Fn::If"]
            assert condition == "SilenceAlarmEveryDay", condition
            return str(yes if every_day else no)
        if "Fn::Sub" in node:
            sub = node["Fn::Sub"]
            text, variables = (sub, {}) if isinstance(sub, str) else sub
            for name, v in variables.items():
                text = text.replace("${" + name + "}", resolve(v))
            for name in declared:
                text = text.replace("${" + name + "}", value(name))
            assert "${" not in text, text
            return text
        raise AssertionError(f"unexpected {node!r}")

    alarm = template["Resources"]["SilenceAlarm"]["Properties"]
    return [(m["Id"], resolve(m["Expression"])) for m in alarm["Metrics"] if "Expression" in m]


def silence_value(expressions, at, sent):
    """What CloudWatch's metric math makes of the minute `at` (a UTC
    datetime) with `sent` messages (None: no data point), per AWS's
    definitions: HOUR 0-23 and DAY 1 (Monday) to 7 (Sunday) of the
    timestamp, comparisons and AND/OR 1 or 0, FILL(m, v) v where m has no
    value, IF(c, a, b) a where c is not 0."""
    names = {
        "HOUR": lambda _: at.hour,
        "DAY": lambda _: at.isoweekday(),
        "FLOOR": math.floor,
        "FILL": lambda m, v: v if m is None else m,
        "IF": lambda c, a, b: a if c else b,
        "sent": sent,
    }
    for id_, expression in expressions:
        python = expression.replace(" AND ", " and ").replace(" OR ", " or ")
        names[id_] = eval(python, {"__builtins__": {}}, names)  # noqa: S307 - our own template's text
    return names[expressions[-1][0]]


def silence_alarm_problems(template):
    """The silence alarm watches the notification queue's
    NumberOfMessagesSent a minute at a time, fires after SilenceAlarmMinutes
    of zeros (at most a day of one-minute periods, AWS's limit below an hour's
    period), treats no data as silence, and is off at 0."""
    problems = []
    alarm = template["Resources"].get("SilenceAlarm")
    if alarm is None:
        return ["no SilenceAlarm"]
    props = alarm["Properties"]
    if alarm.get("Condition") != "UseSilenceAlarm":
        problems.append("SilenceAlarm is not under UseSilenceAlarm (SilenceAlarmMinutes=0 turns it off)")
    stats = [m["MetricStat"] for m in props["Metrics"] if "MetricStat" in m]
    if len(stats) != 1:
        problems.append("SilenceAlarm reads other than one metric")
    else:
        metric = stats[0]["Metric"]
        queue = [referenced(d["Value"]) for d in metric.get("Dimensions", []) if d["Name"] == "QueueName"]
        if (metric["Namespace"], metric["MetricName"], queue) != ("AWS/SQS", "NumberOfMessagesSent", ["NotificationQueue"]):
            problems.append("SilenceAlarm does not read the notification queue's NumberOfMessagesSent")
        if stats[0]["Period"] != 60 or stats[0]["Stat"] != "Sum":
            problems.append("SilenceAlarm does not sum one-minute periods")
    minutes = template["Parameters"]["SilenceAlarmMinutes"]
    for field in ("EvaluationPeriods", "DatapointsToAlarm"):
        if props.get(field) != {"Ref": "SilenceAlarmMinutes"}:
            problems.append(f"SilenceAlarm's {field} is not SilenceAlarmMinutes")
    allowed = [int(v) for v in minutes["AllowedValues"]]
    if any(0 < v < 10 for v in allowed):
        problems.append("SilenceAlarmMinutes allows under 10 minutes (SQS may publish every 5)")
    if max(allowed) * 60 > DAY:
        problems.append("SilenceAlarmMinutes allows more than a day of one-minute periods")
    if props.get("TreatMissingData") != "breaching":
        problems.append("SilenceAlarm does not treat missing data as silence")
    if (props.get("ComparisonOperator"), props.get("Threshold")) != ("LessThanThreshold", 1):
        problems.append("SilenceAlarm does not fire below one message a minute")
    return problems


def working_hours(at, offset, start, hours, every_day):
    """Whether `at` (UTC) falls in working hours that open at `start`, in
    the time `offset` hours ahead of UTC, on a weekday (or every day) and
    last `hours`: the reference the metric math is held to."""
    local = at + datetime.timedelta(hours=offset)
    for back in range(0, 2):
        day = (local - datetime.timedelta(days=back)).date()
        opened = datetime.datetime.combine(day, datetime.time(start))
        if (every_day or day.isoweekday() <= 5) and opened <= local < opened + datetime.timedelta(hours=hours):
            return True
    return False


def pause_alarm_problems(template):
    """Every error Intercom counts towards its pause (over 1,000
    consecutive errors in 15 minutes) raises an alarm first: any 5xx of the
    front, 401s above a threshold that cannot exceed a third of the pause
    rate per 5 minutes, and any 403 for a source outside the allowlist."""
    problems = []
    alarms = template["Resources"]
    fronts = {"ReceiverServerErrorsAlarm": ("AWS/ApiGateway", "5xx"), "ReceiverUrlServerErrorsAlarm": ("AWS/Lambda", "Url5xxCount")}
    for name, (namespace, metric) in fronts.items():
        props = alarms[name]["Properties"]
        if (props["Namespace"], props["MetricName"], props["Threshold"], props["Period"]) != (namespace, metric, 0, 300):
            problems.append(f"{name} does not fire on any {metric} within 5 minutes")
    signature = template["Parameters"]["SignatureFailureAlarmPer5Minutes"]
    if int(signature.get("MaxValue", 10**9)) * 3 >= 1000:
        problems.append("SignatureFailureAlarmPer5Minutes can be set at or above Intercom's pause rate")
    forbidden = alarms.get("ForbiddenSourceAlarm")
    if forbidden is None:
        problems.append("no ForbiddenSourceAlarm")
    else:
        props = forbidden["Properties"]
        answers = [d["Value"] for d in props["Dimensions"] if d["Name"] == "Answer"]
        if (props["MetricName"], answers, props["Threshold"]) != ("Requests", ["forbidden_source"], 0):
            problems.append("ForbiddenSourceAlarm does not fire on any forbidden_source answer")
        if "lost" not in props["AlarmDescription"]:
            problems.append("ForbiddenSourceAlarm does not say notifications are lost")
    for name in list(fronts) + ["SignatureFailuresAlarm", "SilenceAlarm"]:
        if "Set live" not in alarms[name]["Properties"]["AlarmDescription"]:
            problems.append(f"{name} does not say how to lift Intercom's suspension (Set live)")
    return problems


# --- the tests: the template as shipped, and broken -------------------------


class TemplateKnowsAws(unittest.TestCase):
    def test_alarm_topics_are_ones_cloudwatch_can_publish_to(self):
        template = load()
        self.assertEqual(alarm_topic_problems(template), [])
        self.assertTrue(resources(template, "AWS::CloudWatch::Alarm"), "the template has alarms")

        managed = load()
        managed["Resources"]["AlarmTopic"]["Properties"]["KmsMasterKeyId"] = "alias/aws/sns"
        self.assertTrue(alarm_topic_problems(managed))

        no_grant = load()
        statements = no_grant["Resources"]["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
        no_grant["Resources"]["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"] = [
            s for s in statements if "Service" not in s.get("Principal", {})
        ]
        problems = alarm_topic_problems(no_grant)
        alarms = len(resources(no_grant, "AWS::CloudWatch::Alarm"))
        self.assertEqual(len(problems), 2 * alarms, problems)
        for needed in ("kms:Decrypt ", "kms:GenerateDataKey "):
            self.assertEqual(sum(needed in p for p in problems), alarms)

        no_rotation = load()
        no_rotation["Resources"]["AlarmTopicKey"]["Properties"]["EnableKeyRotation"] = False
        self.assertTrue(alarm_topic_problems(no_rotation))

    def test_a_public_function_url_has_both_permissions(self):
        template = load()
        self.assertTrue(resources(template, "AWS::Lambda::Url"), "the template has a function URL")
        self.assertEqual(function_url_problems(template), [])

        only_url = load()
        del only_url["Resources"]["WebhookFunctionUrlInvokePermission"]
        self.assertEqual(
            function_url_problems(only_url),
            ["WebhookFunctionUrl is public but ReceiverFunction does not allow lambda:InvokeFunction"],
        )

    def test_visibility_timeout_is_six_times_the_processor_timeout(self):
        template = load()
        self.assertEqual(
            [(f, q) for f, _, q in functions_on_queues(template)],
            [("ProcessorFunction", "NotificationQueue")],
        )
        self.assertEqual(visibility_problems(template), [])

        slower = load()
        slower["Resources"]["ProcessorFunction"]["Properties"]["Timeout"] = 61
        self.assertTrue(visibility_problems(slower))

    def test_payload_objects_outlive_every_pointer(self):
        template = load()
        self.assertEqual(payload_expiry_problems(template), [])

        short = load()
        short["Resources"]["PayloadBucket"]["Properties"]["LifecycleConfiguration"]["Rules"][0][
            "ExpirationInDays"
        ] = 21
        self.assertEqual(
            payload_expiry_problems(short),
            ["PayloadBucket expires objects after 21 days; a pointer can live 22"],
        )


    def test_steps_outlive_their_notification_on_both_queues(self):
        self.assertEqual(steps_ttl_problems(load()), [])

        longer = load()
        longer["Resources"]["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] = 1209600 + DAY
        self.assertEqual(
            steps_ttl_problems(longer),
            ["StepsTtlSeconds MinValue 1555200 is under the queues' retention together (1641600)"],
        )
        unpassed = load()
        del unpassed["Resources"]["ProcessorFunction"]["Properties"]["Environment"]["Variables"][
            "STEPS_TTL_SECONDS"
        ]
        self.assertEqual(
            steps_ttl_problems(unpassed),
            ["ProcessorFunction does not pass StepsTtlSeconds as STEPS_TTL_SECONDS"],
        )

    def test_the_archive_stream_writes_the_partitions_replay_reads(self):
        template = load()
        self.assertEqual(archive_stream_problems(template), [])

        flat = load()
        s3 = flat["Resources"]["ArchiveStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
        s3["Prefix"] = {"Fn::Sub": "${ArchivePrefix}stream/!{partitionKeyFromQuery:topic}/"}
        s3["CompressionFormat"] = "UNCOMPRESSED"
        self.assertEqual(len(archive_stream_problems(flat)), 2, archive_stream_problems(flat))

    def test_each_role_grants_exactly_what_its_code_calls(self):
        import json

        with open(IAM_ACTIONS) as f:
            seen = json.load(f)
        template = load()
        self.assertEqual(role_problems(template, seen), [])

        more = load()
        statement = more["Resources"]["ProcessorFunction"]["Properties"]["Policies"][1]["Fn::If"][1]
        statement["Statement"][0]["Action"].append("dynamodb:Scan")
        self.assertEqual(
            role_problems(more, seen),
            ["ProcessorFunction grants dynamodb:Scan, which its code was never seen calling"],
        )
        fewer = dict(seen, **{"webhook-receiver": seen["webhook-receiver"] + ["kms:Decrypt"]})
        self.assertEqual(
            role_problems(load(), fewer),
            ["ReceiverFunction does not grant kms:Decrypt, which its code calls"],
        )


    def test_the_defaults_are_cut_to_the_bone_and_keep_every_guarantee(self):
        template = load()
        self.assertEqual(small_team_default_problems(template), [])

        costly = load()
        costly["Parameters"]["Tracing"]["Default"] = "Active"
        costly["Resources"]["NotificationBusArchive"]["Condition"] = "UseEventBus"
        del costly["Resources"]["NotificationQueue"]["Properties"]["RedrivePolicy"]
        costly["Parameters"]["Dashboard"]["Default"] = "enabled"
        costly["Resources"]["SignatureFailuresAlarm"]["Condition"] = "UseDashboard"
        costly["Globals"]["Function"]["Environment"]["Variables"]["METRICS"] = {"Fn::If": ["UseMetrics", "on", "off"]}
        costly["Resources"]["ApiThrottledMetric"]["Properties"]["MetricTransformations"][0]["DefaultValue"] = 0
        self.assertEqual(
            small_team_default_problems(costly),
            [
                "Tracing defaults to 'Active', not 'PassThrough'",
                "Dashboard defaults to 'enabled', not 'disabled'",
                "NotificationBusArchive is under 'UseEventBus', not 'UseBusArchive'",
                "SignatureFailuresAlarm is under 'UseDashboard': an alarm must not hang on the dashboard",
                "ApiThrottledMetric has a DefaultValue: Throttled429 is published every hour",
                "the functions' METRICS is {'Fn::If': ['UseMetrics', 'on', 'off']}, not on/alarms/off by the dashboard",
                "NotificationQueue has no dead-letter queue",
            ],
        )

    def test_check_stack_finds_every_output_and_alarm_it_reads(self):
        template = load()
        self.assertEqual(check_stack_problems(template), [])

        broken = load()
        del broken["Outputs"]["AlarmTopicArn"]
        broken["Outputs"]["DeadLetterQueueUrl"]["Condition"] = "UseHttpApi"
        broken["Resources"]["OldestMessageAgeAlarm"]["Properties"]["AlarmActions"] = []
        self.assertEqual(
            check_stack_problems(broken),
            [
                "the DeadLetterQueueUrl output has a condition; check --stack needs it always",
                "no AlarmTopicArn output, which check --stack reads",
                "OldestMessageAgeAlarm does not act on AlarmTopic; check --stack would not see it",
            ],
        )

    def test_the_receiver_counts_exactly_the_answers_the_alarms_read(self):
        template = load()
        self.assertEqual(alarmed_answers_problems(template), [])

        broken = load()
        dimensions = broken["Resources"]["ForbiddenSourceAlarm"]["Properties"]["Dimensions"]
        dimensions[0]["Value"] = "forbidden_app"
        self.assertEqual(
            alarmed_answers_problems(
                broken, 'pub const ALARMED_ANSWERS: [&str; 2] = ["invalid_signature", "queued"];'
            ),
            [
                "ForbiddenSourceAlarm reads Requests for 'forbidden_app', which METRICS=alarms does not count",
                "ALARMED_ANSWERS counts 'queued', which no alarm reads",
            ],
        )

    def test_reserved_concurrency_never_throttles_the_queue(self):
        template = load()
        self.assertEqual(reserved_concurrency_problems(template), [])

        no_rule = load()
        del no_rule["Rules"]["ProcessorReservedConcurrencyCoversTheQueue"]
        self.assertEqual(
            reserved_concurrency_problems(no_rule),
            [
                "no rule holds ProcessorReservedConcurrency equal to ProcessorMaximumConcurrency, "
                "ProcessorFunction's Notifications MaximumConcurrency"
            ],
        )
        literal = load()
        processor = literal["Resources"]["ProcessorFunction"]["Properties"]
        processor["ReservedConcurrentExecutions"] = 5
        processor["Events"]["Notifications"]["Properties"]["ScalingConfig"]["MaximumConcurrency"] = 10
        self.assertEqual(
            reserved_concurrency_problems(literal),
            ["ProcessorFunction reserves 5, below Notifications's MaximumConcurrency 10"],
        )

    def test_the_alarm_key_serves_only_this_accounts_alarms(self):
        template = load()
        self.assertEqual(alarm_key_problems(template), [])

        open_key = load()
        for statement in open_key["Resources"]["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]:
            statement.pop("Condition", None)
        self.assertEqual(
            alarm_key_problems(open_key),
            [
                "AlarmTopicKey grants CloudWatch without aws:SourceAccount = the account",
                "AlarmTopicKey grants CloudWatch without aws:SourceArn naming this account's alarms",
            ],
        )


    def test_the_silence_alarm_fires_on_silence_in_working_hours_only(self):
        template = load()
        self.assertEqual(silence_alarm_problems(template), [])
        monday = datetime.datetime(2026, 11, 30)
        self.assertEqual(monday.isoweekday(), 1)
        # The defaults; Sydney (9:00 there is 23:00 UTC the day before);
        # New York; every day, all day; every day, past midnight.
        for parameters, (offset, start, hours, every_day) in [
            ({}, (0, 8, 10, False)),
            ({"SilenceAlarmUtcOffset": "+10", "SilenceAlarmStartHour": 9, "SilenceAlarmHours": 9}, (10, 9, 9, False)),
            ({"SilenceAlarmUtcOffset": "-5", "SilenceAlarmStartHour": 8, "SilenceAlarmHours": 12}, (-5, 8, 12, False)),
            ({"SilenceAlarmDays": "everyday", "SilenceAlarmHours": 24, "SilenceAlarmStartHour": 0}, (0, 0, 24, True)),
            ({"SilenceAlarmDays": "everyday", "SilenceAlarmUtcOffset": "+14", "SilenceAlarmStartHour": 20, "SilenceAlarmHours": 7}, (14, 20, 7, True)),
            ({"SilenceAlarmUtcOffset": "-12", "SilenceAlarmStartHour": 22, "SilenceAlarmHours": 5}, (-12, 22, 5, False)),
        ]:
            expressions = silence_expressions(template, parameters)
            watched = 0
            for minute in range(0, 9 * 24 * 60, 7):
                at = monday + datetime.timedelta(minutes=minute)
                expected = working_hours(at, offset, start, hours, every_day)
                watched += expected
                for sent in (None, 0):
                    silent = silence_value(expressions, at, sent) < 1
                    self.assertEqual(silent, expected, f"{parameters} {at:%a %H:%M} UTC sent={sent}")
                self.assertGreaterEqual(silence_value(expressions, at, 3), 1, f"{parameters} {at}")
            self.assertTrue(watched, parameters)

        # Sydney's Monday 9:00 is Sunday 23:00 UTC: watched; its Saturday
        # 9:00 (Friday 23:00 UTC) is not.
        sydney = silence_expressions(template, {"SilenceAlarmUtcOffset": "+10", "SilenceAlarmStartHour": 9})
        self.assertTrue(silence_value(sydney, monday - datetime.timedelta(hours=1), 0) < 1)
        self.assertFalse(silence_value(sydney, monday + datetime.timedelta(days=4, hours=23), 0) < 1)

        broken = load()
        props = broken["Resources"]["SilenceAlarm"]["Properties"]
        props["TreatMissingData"] = "notBreaching"
        props["DatapointsToAlarm"] = 1
        broken["Parameters"]["SilenceAlarmMinutes"]["AllowedValues"].append(5)
        self.assertEqual(
            silence_alarm_problems(broken),
            [
                "SilenceAlarm's DatapointsToAlarm is not SilenceAlarmMinutes",
                "SilenceAlarmMinutes allows under 10 minutes (SQS may publish every 5)",
                "SilenceAlarm does not treat missing data as silence",
            ],
        )
        # Judging the day by UTC alone would watch Sydney's Saturday.
        naive = load()
        for metric in naive["Resources"]["SilenceAlarm"]["Properties"]["Metrics"]:
            if metric["Id"] == "opened":
                metric["Expression"] = "DAY(sent) - (since > lhour)"
        naive = silence_expressions(naive, {"SilenceAlarmUtcOffset": "+10", "SilenceAlarmStartHour": 9})
        self.assertTrue(silence_value(naive, monday + datetime.timedelta(days=4, hours=23), 0) < 1)

    def test_errors_that_lead_intercom_to_pause_alarm_before_it_does(self):
        template = load()
        self.assertEqual(pause_alarm_problems(template), [])

        broken = load()
        broken["Parameters"]["SignatureFailureAlarmPer5Minutes"].pop("MaxValue")
        broken["Resources"]["ReceiverServerErrorsAlarm"]["Properties"]["Threshold"] = 100
        del broken["Resources"]["ForbiddenSourceAlarm"]
        self.assertEqual(
            pause_alarm_problems(broken),
            [
                "ReceiverServerErrorsAlarm does not fire on any 5xx within 5 minutes",
                "SignatureFailureAlarmPer5Minutes can be set at or above Intercom's pause rate",
                "no ForbiddenSourceAlarm",
            ],
        )


if __name__ == "__main__":
    unittest.main(verbosity=2)
