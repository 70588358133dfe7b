// Example sentences for the counterfactual demo, copied verbatim from the SemEval-2020 Task 5 train
// files (subtask1_train.csv, subtask2_train.csv; `id` is the sentenceID). All come from the part
// the trainer trains on, not from the dev split (the last 10% by sentenceID of each class), so the
// examples show what the model learned, and the dev sentences stay unseen for the e2e tests.
// `gold` is the annotation: counterfactual or not, and for counterfactuals the antecedent and
// consequent as they are marked in the file.

export const EXAMPLES = [
  {
    id: '200078',
    text: "If these guys had done their job right, I wouldn't be here apologizing to Eric, Tim, and Rick.",
    gold: 'counterfactual: antecedent and consequent',
  },
  {
    id: '200110',
    text: 'At the time, we would have been genuinely surprised had Blum managed to pull off another win.',
    gold: 'counterfactual: consequent first, then the antecedent',
  },
  {
    id: '200065',
    text: '"If it was down to the Bundesbank then we wouldn\'t have bought any euro zone debt," he said.',
    gold: 'counterfactual: antecedent and consequent',
  },
  {
    id: '200024',
    text: 'I wish he would have said more at the State of the Union.',
    gold: 'counterfactual without a consequent',
  },
  {
    id: '200021',
    text: 'Later, Mr Chaffetz told Fox News his comment could have been phrased more "smoothly".',
    gold: 'counterfactual without a consequent',
  },
  {
    id: '100057',
    text: 'If a baby is formula-fed, then trying a hypoallergenic formula may be helpful.',
    gold: 'not counterfactual (a plain conditional)',
  },
  {
    id: '100022',
    text: 'We will let you know over the next week if it looks like that might change.',
    gold: 'not counterfactual',
  },
  {
    id: '100088',
    text: 'It is an approach that may have found its moment.',
    gold: 'not counterfactual',
  },
];
