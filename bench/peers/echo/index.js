// The echo handler of the scale benchmarks (bench/scale_bench.py --only peers): the same file runs
// on serverless-offline, on lambda-local and on Hearth's nodejs20.x runtime. Answers the event.
exports.handler = async (event) => event;
