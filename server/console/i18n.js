// Every text of the console in English and Chinese. The language comes from the browser
// (navigator.languages: zh* → Chinese, otherwise English) unless the switch chose one, which
// is remembered in localStorage.

const STORAGE_KEY = 'flexwork.console.lang';

// key: [English, 中文]. Placeholders are written {name}.
const TEXT = {
  'app.title': ['flexwork console', 'flexwork 管理台'],
  'page.loading': ['Loading…', '加载中…'],
  'page.not_found': ['No such page', '没有这个页面'],
  'page.workers_use_phone': [
    'This console is for operators, enterprises and regulators; workers use the phone app.',
    '本管理台供平台运营、企业和监管机构使用；劳动者请使用手机应用。',
  ],
  'page.error': ['This page could not be shown', '无法显示此页面'],
  'list.empty': ['Nothing here.', '暂无内容。'],
  'list.more': ['Show more', '加载更多'],
  'form.required': ['Please fill this in.', '请填写此项。'],
  'form.min_chars': ['Please write at least {min} characters.', '请至少填写 {min} 个字符。'],
  'form.reason': ['Reason', '理由'],
  'form.cancel': ['Cancel', '取消'],

  'nav.queues': ['Queues', '待办队列'],
  'nav.tasks_review': ['Tasks to review', '任务审核'],
  'nav.evidence': ['Evidence', '证据审核'],
  'nav.statements': ['Statements', '结算单'],
  'nav.disputes': ['Disputes', '争议'],
  'nav.enterprise_home': ['Overview', '概览'],
  'nav.tasks': ['Tasks', '任务'],
  'nav.orders': ['Orders', '订单'],
  'nav.invoices': ['Invoices', '发票'],
  'nav.regulator': ['Orders and invoices', '订单与发票'],

  'role.operator': ['Operator', '平台运营'],
  'role.enterprise': ['Enterprise', '企业'],
  'role.regulator': ['Regulator', '监管机构'],
  'role.worker': ['Worker', '劳动者'],
  'team.reviewer': ['reviewer', '审核'],
  'team.risk': ['risk', '风控'],
  'team.finance': ['finance', '财务'],
  'team.legal': ['legal', '法务'],
  'team.welfare': ['welfare', '权益保障'],
  'team.support': ['support', '客服'],
  'team.regulator_liaison': ['regulator liaison', '监管对接'],
  'team.administrator': ['administrator', '管理员'],

  'session.sign_out': ['Sign out', '退出登录'],
  'session.signed_out': ['You are signed out.', '您已退出登录。'],
  'session.expired': [
    'Your session has expired. Please sign in again.',
    '会话已过期，请重新登录。',
  ],

  'login.title': ['Sign in', '登录'],
  'login.login': ['Login', '账号'],
  'login.password': ['Password', '密码'],
  'login.totp': ['Code from your authenticator app', '身份验证器中的动态码'],
  'login.totp_hint': [
    'Six digits; leave empty on your very first sign-in.',
    '六位数字；首次登录时留空。',
  ],
  'login.recovery_code': ['Recovery code', '恢复码'],
  'login.use_recovery': ['Use a recovery code instead', '改用恢复码'],
  'login.use_totp': ['Use the authenticator code', '改用动态码'],
  'login.submit': ['Sign in', '登录'],
  'setup.title': ['Set up two-step sign-in', '设置两步登录'],
  'setup.intro': [
    'Add this account to an authenticator app with the secret or the URL below, ' +
      'then type the code it shows.',
    '请用下面的密钥或链接把此账号添加到身份验证器应用，然后输入应用显示的动态码。',
  ],
  'setup.secret': ['Secret', '密钥'],
  'setup.url': ['otpauth URL', 'otpauth 链接'],
  'setup.code': ['First code from the app', '应用显示的第一个动态码'],
  'setup.confirm': ['Turn on two-step sign-in', '开启两步登录'],
  'setup.recovery_title': ['Your recovery codes', '您的恢复码'],
  'setup.recovery_intro': [
    'Each code signs you in once if you lose the app. ' +
      'They are shown only now: keep them somewhere safe.',
    '丢失身份验证器时，每个恢复码可登录一次。恢复码只显示这一次，请妥善保存。',
  ],
  'setup.continue': ['I have kept them — continue', '我已保存，继续'],

  'queue.title': ['Work queues', '待办队列'],
  'queue.worker_applications': ['Worker applications', '劳动者入驻申请'],
  'queue.enterprise_applications': ['Enterprise applications', '企业入驻申请'],
  'queue.tasks_to_review': ['Tasks to review', '待审核任务'],
  'queue.evidence_to_review': ['Evidence to review', '待复核证据'],
  'queue.returned': ['Sent back to workers', '已退回劳动者'],
  'queue.disputes': ['Disputes', '争议'],
  'queue.overdue': ['overdue', '已超期'],
  'queue.overdue_n': ['{n} overdue', '{n} 件超期'],
  'queue.next_deadline': ['next deadline', '最近期限'],
  'queue.oldest': ['oldest', '最早'],

  'app.submitted': ['Submitted', '提交时间'],
  'app.deadline': ['Deadline (2 working days)', '审核期限（2个工作日）'],
  'app.name': ['Name', '姓名'],
  'app.id_number': ['ID number', '身份证号'],
  'app.phone': ['Phone', '手机号'],
  'app.bank_card': ['Bank card', '银行卡号'],
  'app.checks': ['Checks', '自动核验'],
  'app.realname': ['real name', '实名'],
  'app.decide': ['Decision', '审核决定'],
  'app.company': ['Company', '企业名称'],
  'app.credit_code': ['Credit code', '统一社会信用代码'],
  'app.check_failed': ['check character fails', '校验位不符'],
  'app.documents_missing': ['Documents missing', '缺少的材料'],

  'reveal.button': ['Reveal', '查看明文'],
  'reveal.reason': ['Why do you need to see it?', '查看理由'],
  'reveal.reason_placeholder': ['reason, recorded in the audit trail', '理由将记入审计日志'],
  'reveal.confirm': ['Reveal', '查看'],
  'reveal.audited': ['recorded in the audit trail', '已记入审计日志'],

  'decision.approve': ['Approve', '通过'],
  'decision.reject': ['Reject', '驳回'],
  'decision.has_issues': ['Has issues', '有问题，退回'],
  'decision.approved': ['Approved', '已通过'],
  'decision.rejected': ['Rejected', '已驳回'],
  'decision.recorded': ['Decision recorded.', '决定已记录。'],

  'tasks_review.title': ['Tasks to review', '待审核任务'],
  'tasks_review.no_warnings': ['The capacity pre-check found nothing.', '容量预检未发现问题。'],
  'tasks_review.publish_legend': ['Publish — after checking it is genuine', '发布（核实真实性后）'],
  'tasks_review.refuse_legend': ['Refuse', '拒绝'],
  'tasks_review.check_kind': ['How you checked', '核实方式'],
  'tasks_review.note': ['What you checked and found', '核实内容与结果'],
  'tasks_review.note_placeholder': [
    'e.g. called the enterprise: the shop and the job are real',
    '例如：致电企业，门店与工作真实',
  ],
  'tasks_review.reason_code': ['Reason code', '拒绝原因'],
  'tasks_review.code_required': ['Choose why the task is refused.', '请选择拒绝原因。'],
  'tasks_review.publish': ['Publish', '发布'],
  'tasks_review.refuse': ['Refuse', '拒绝'],
  'tasks_review.done.publish': ['The task is published.', '任务已发布。'],
  'tasks_review.done.refuse': ['The task is refused.', '任务已拒绝。'],
  'check.phone_call': ['Phone call', '电话核实'],
  'check.visit': ['Visit', '实地走访'],
  'check.lookup': ['Public records', '公开信息查询'],
  'refusal.not_flexible_work': ['Not flexible work', '不属于灵活用工'],
  'refusal.beyond_one_person': ['Beyond one person', '超出一人工作量'],
  'refusal.not_genuine': ['Not genuine', '无法核实真实性'],
  'refusal.other': ['Other', '其他'],

  'task.title': ['Task', '任务'],
  'task.site': ['Site', '地点'],
  'task.window': ['Window', '时间窗口'],
  'task.fee': ['Fee', '费用'],
  'task.headcount': ['Headcount', '人数'],
  'task.acceptance': ['Acceptance criteria', '验收标准'],
  'task.missing': ['Missing fields', '缺少字段'],

  'order.id': ['Order', '订单'],
  'order.task': ['Task', '任务'],
  'order.created': ['Created', '创建时间'],
  'order.submitted': ['Submitted', '提交时间'],
  'order.status': ['Status', '状态'],
  'order.verdict': ['Verdict', '核验结论'],
  'order.findings': ['Findings', '发现'],
  'order.view_evidence': ['View the evidence', '查看证据'],
  'order.completion': ['Completion', '完工确认'],
  'order.confirmation': ['Your decision', '企业确认'],
  'order.confirm': ['Confirm completion', '确认完工'],
  'order.confirmed': ['Completion confirmed.', '已确认完工。'],
  'order.dispute': ['Dispute completion', '对完工提出异议'],
  'order.disputed': ['Completion disputed.', '已提出异议。'],
  'confirmation.confirmed': ['confirmed', '已确认'],
  'confirmation.disputed': ['disputed', '有异议'],

  'statement.title': ['Statement (version {version})', '结算单（第 {version} 版）'],
  'statement.version': ['Version', '版本'],
  'statement.gross': ['Gross fee', '劳务费'],
  'statement.fee': ['Platform fee', '平台服务费'],
  'statement.total': ['Total', '合计'],
  'statement.awaiting': ['Awaiting', '待确认方'],
  'statement.dispute_reason': ['Dispute', '异议'],
  'statement.confirm': ['Confirm statement', '确认结算单'],
  'statement.confirmed': ['Statement confirmed.', '结算单已确认。'],
  'statement.dispute': ['Dispute statement', '对结算单提出异议'],
  'statement.disputed': ['Statement disputed.', '已对结算单提出异议。'],
  'party.platform': ['platform', '平台'],
  'party.enterprise': ['enterprise', '企业'],
  'party.worker': ['worker', '劳动者'],

  'settlement.title': ['Settlement', '结算'],
  'settlement.gross': ['Gross', '应发'],
  'settlement.tax': ['Tax withheld', '代扣个税'],
  'settlement.net': ['Net pay', '实发'],
  'settlement.method': ['Tax method', '计税方式'],
  'settlement.payout': ['payout', '发放'],

  'escrow.title': ['Escrow balance', '托管账户余额'],
  'escrow.deposits': ['Deposits', '充值记录'],
  'escrow.movements': ['Movements', '资金变动'],
  'escrow.value_date': ['Value date', '起息日'],
  'escrow.reference': ['Bank reference', '银行流水号'],
  'escrow.amount': ['Amount', '金额'],
  'escrow.when': ['When', '时间'],
  'escrow.kind': ['Kind', '类型'],
  'movement.deposit': ['deposit', '充值'],
  'movement.settlement': ['settlement', '结算支出'],

  'enterprise.title': ['Overview', '概览'],
  'enterprise.to_confirm': ['Completed work to confirm', '待确认完工的订单'],
  'enterprise.statements_to_confirm': ['Statements to confirm', '待确认的结算单'],

  'invoice.number': ['Number', '发票号码'],
  'invoice.kind': ['Kind', '类型'],
  'invoice.kind_blue': ['invoice', '蓝字发票'],
  'invoice.kind_red': ['red-letter reversal', '红字发票'],
  'invoice.total': ['Total', '合计'],
  'invoice.total_shown': ['Total of those shown', '已显示的合计'],
  'invoice.issued': ['Issued', '开具时间'],
  'invoice.lines': ['Lines', '明细'],

  'resolve.action': ['Resolution', '处理方式'],
  'resolve.reissue': ['Reissue with a corrected fee', '更正后重新出具'],
  'resolve.void': ['Void', '作废'],
  'resolve.gross': ['Corrected gross (yuan)', '更正后劳务费（元）'],
  'resolve.gross_invalid': [
    'Write an amount in yuan, like 2800.00.',
    '请填写以元为单位的金额，例如 2800.00。',
  ],
  'resolve.submit': ['Resolve', '处理'],
  'resolve.done': ['Dispute resolved.', '争议已处理。'],
  'disputes.orders': ['Disputed completion', '完工异议'],
  'disputes.statements': ['Disputed statements', '结算单异议'],
  'disputes.reason': ['Reason', '理由'],

  'regulator.title': ['Orders, evidence and invoices', '订单、证据与发票'],
  'regulator.read_only': [
    'Read-only view for the regulator (standard 5.2 f).',
    '监管只读视图（标准 5.2 f）。',
  ],
  'regulator.from': ['From', '起始日期'],
  'regulator.to': ['To (inclusive)', '截止日期（含）'],
  'regulator.enterprise': ['Enterprise', '企业'],
  'regulator.all_enterprises': ['All enterprises', '全部企业'],
  'regulator.filter': ['Filter', '筛选'],
  'regulator.orders': ['Orders', '订单'],
  'regulator.evidence': ['Evidence', '证据'],
  'regulator.summary': [
    '{photos} photos · {points} track points · {signatures} signatures · ' +
      '{notes} notes · {findings} findings',
    '照片 {photos} · 轨迹点 {points} · 签名 {signatures} · 备注 {notes} · 发现 {findings}',
  ],
  'regulator.to_before_from': ['The end date is before the start date.', '截止日期早于起始日期。'],

  'evidence.title': ['Evidence of order {id}', '订单 {id} 的证据'],
  'evidence.pending': ['verification running', '核验进行中'],
  'evidence.site': ['Site', '任务地点'],
  'evidence.radius': ['radius', '半径'],
  'evidence.window': ['Window', '时间窗口'],
  'evidence.submitted': ['Submitted', '提交时间'],
  'evidence.findings': ['Verdict and findings', '核验结论与发现'],
  'evidence.no_findings': ['The checks found nothing to report.', '核验未发现问题。'],
  'evidence.remarks': ['Sent back to the worker', '已退回劳动者的意见'],
  'evidence.remark': ['to fix', '需改正'],
  'evidence.items': ['Items', '项目'],
  'evidence.photos': ['Photos', '照片'],
  'evidence.photo_n': ['Photo {n}', '照片 {n}'],
  'evidence.signature_n': ['Signature {n}', '签名 {n}'],
  'evidence.note_n': ['Note {n}', '备注 {n}'],
  'evidence.none': ['None.', '无。'],
  'evidence.full_size': ['Show full size', '查看原图'],
  'evidence.close': ['Close', '关闭'],
  'evidence.captured': ['Captured (phone)', '拍摄时间（手机）'],
  'evidence.phone_fix': ['Phone location', '手机定位'],
  'evidence.mock': ['mock location', '模拟定位'],
  'evidence.file': ['File', '文件'],
  'evidence.exif': ['EXIF', 'EXIF 信息'],
  'evidence.no_exif': ['The file has no EXIF facts.', '文件没有 EXIF 信息。'],
  'evidence.exif_pending': [
    'Read when the evidence is verified.',
    '证据核验时读取。',
  ],
  'evidence.trajectory': ['Trajectory', '轨迹'],
  'evidence.points': ['{n} points', '{n} 个点'],
  'evidence.no_track': ['No trajectory was recorded.', '没有记录轨迹。'],
  'evidence.trajectory_hint': [
    "The circle is the task's site to scale; the line goes from blue (start) to red (end); " +
      'numbered squares are where the photos were taken.',
    '圆圈为按比例绘制的任务地点范围；轨迹颜色由蓝（开始）渐变到红（结束）；带编号的方块为拍照位置。',
  ],
  'evidence.start': ['start', '开始'],
  'evidence.end': ['end', '结束'],
  'evidence.signature': ['Signature', '签名'],
  'evidence.signatures': ['Signatures', '签名'],
  'evidence.notes': ['Notes', '备注'],
  'evidence.decisions': ['Decisions', '审核记录'],
  'evidence.no_decisions': ['No decision yet.', '尚无审核决定。'],
  'evidence.when': ['When', '时间'],
  'evidence.decision': ['Decision', '决定'],
  'evidence.reason': ['Reason', '理由'],
  'evidence.operator': ['Operator', '审核人'],
  'evidence.reason_hint': [
    'Recorded with the decision; for "has issues" it is sent to the worker.',
    '理由随决定记录；选择“有问题”时会发送给劳动者。',
  ],
  'evidence.actions': ['Your decision', '审核决定'],
  'evidence.has_issue': ['Has issues', '有问题'],
  'evidence.issue_comment': ['What the worker should fix', '需要劳动者改正的内容'],
  'evidence.items_hint': [
    'For "has issues", tick "Has issues" on each item concerned and say what to fix.',
    '选择“有问题”时，请在相关项目上勾选“有问题”并说明需改正的内容。',
  ],
  'evidence.choose_decision': ['Choose a decision.', '请选择审核决定。'],
  'evidence.choose_items': [
    'Tick at least one item that has issues.',
    '请至少勾选一个有问题的项目。',
  ],
  'evidence.record_decision': ['Record decision', '提交决定'],
  'evidence.recorded.approve': ['Approved.', '已通过。'],
  'evidence.recorded.reject': ['Rejected.', '已驳回。'],
  'evidence.recorded.has_issues': [
    'Sent back to the worker with your comments.',
    '已连同意见退回劳动者。',
  ],

  'exif.camera_make': ['Camera make', '相机厂商'],
  'exif.camera_model': ['Camera model', '相机型号'],
  'exif.taken_at_local': ['Camera clock (no zone)', '相机时间（无时区）'],
  'exif.decoding': ['Decoding', '解码'],
  'orientation.1': ['upright (1)', '正常（1）'],
  'orientation.3': ['upside down (3)', '旋转180°（3）'],
  'orientation.6': ['turn 90° clockwise to view (6)', '需顺时针旋转90°（6）'],
  'orientation.8': ['turn 90° anticlockwise to view (8)', '需逆时针旋转90°（8）'],
  'exif.software': ['Software', '软件'],
  'exif.taken_at': ['Taken at', '拍摄时间'],
  'exif.gps': ['GPS position', 'GPS 位置'],
  'exif.gps_time': ['GPS time (UTC)', 'GPS 时间（UTC）'],
  'exif.orientation': ['Orientation', '方向'],
  'exif.dimensions': ['Dimensions', '尺寸'],

  'verdict.passed': ['passed', '通过'],
  'verdict.needs_review': ['needs review', '需人工复核'],
  'verdict.rejected': ['rejected', '未通过'],
  'verdict_explained.passed': [
    'Verdict: passed — no check found a problem.',
    '结论：通过，各项核验未发现问题。',
  ],
  'verdict_explained.needs_review': [
    'Verdict: needs review — a person must decide.',
    '结论：需人工复核，请审核人员决定。',
  ],
  'verdict_explained.rejected': [
    'Verdict: rejected — the evidence fails a required check.',
    '结论：未通过，证据不符合必要条件。',
  ],
  'severity.info': ['info', '提示'],
  'severity.review': ['review', '需复核'],
  'severity.reject': ['reject', '不通过'],
  'severity.error': ['to fix', '需改正'],

  'status.assigned': ['assigned', '已指派'],
  'status.submitted': ['submitted', '已提交'],
  'status.needs_review': ['needs review', '待复核'],
  'status.verified': ['verified', '已核验'],
  'status.rejected': ['rejected', '已驳回'],
  'status.returned': ['sent back to the worker', '已退回劳动者'],
  'status.confirmed': ['confirmed', '已确认'],
  'status.reconciling': ['statement open', '结算单待确认'],
  'status.awaiting_funds': ['awaiting funds', '待资金到账'],
  'status.disputed': ['disputed', '有争议'],
  'status.void': ['void', '已作废'],
  'status.settled': ['settled', '已结算'],
  'status.paid': ['paid out', '已发放'],
  'status.invoiced': ['invoiced', '已开票'],
  'status.cancelled': ['cancelled', '已取消'],
  'status.draft': ['draft', '草稿'],
  'status.published': ['published', '已发布'],
  'status.refused': ['refused', '已拒绝'],
  'status.closed': ['closed', '已满员'],
  'status.open': ['open', '待确认'],
  'status.superseded': ['superseded', '已被替代'],
  'status.requested': ['requested', '已申请'],
  'status.issued': ['issued', '已开具'],
  'status.failed': ['failed', '失败'],
  'status.reversed': ['reversed', '已冲红'],
  'status.pending': ['pending', '待处理'],
  'status.processing': ['processing', '处理中'],
  'status.pending_payout': ['awaiting payout', '待发放'],
  'status.in_payout': ['payout in progress', '发放中'],
  'tax_method.per_payment_2018': ['withheld per payment', '按次预扣'],
  'tax_method.cumulative_2025': ['cumulative withholding (2025)', '累计预扣法（2025）'],

  'finding.photo_undecodable': ['The photo cannot be decoded', '照片无法解码'],
  'finding.photo_too_large': ['The photo is too large to check', '照片过大，无法核验'],
  'finding.photo_not_uploaded': [
    'The photo file has not reached the server',
    '照片文件尚未上传到服务器',
  ],
  'finding.photo_no_exif': ['The photo has no EXIF data', '照片没有 EXIF 信息'],
  'finding.photo_no_exif_gps': [
    "The photo's EXIF has no GPS position",
    '照片 EXIF 中没有 GPS 位置',
  ],
  'finding.photo_exif_unreadable': ["The photo's EXIF cannot be read", '照片 EXIF 无法读取'],
  'finding.photo_mock_location': ['The phone reported a mock location', '手机使用了模拟定位'],
  'finding.photo_fix_inaccurate': ["The phone's location fix is inaccurate", '手机定位精度不足'],
  'finding.photo_fix_invalid': ["The phone's location fix is invalid", '手机定位数据无效'],
  'finding.photo_outside_site': [
    'The photo was taken outside the site',
    '照片拍摄位置不在任务地点范围内',
  ],
  'finding.photo_position_unknown': [
    'Where the photo was taken is unknown',
    '无法确定照片拍摄位置',
  ],
  'finding.photo_outside_window': [
    'The photo was taken outside the time window',
    '照片拍摄时间不在任务时间窗口内',
  ],
  'finding.photo_time_unknown': ['When the photo was taken is unknown', '无法确定照片拍摄时间'],
  'finding.photo_time_unzoned': ["The photo's time has no time zone", '照片时间没有时区信息'],
  'finding.photo_gps_time_mismatch': [
    "The phone clock and the photo's GPS time disagree",
    '手机时间与照片 GPS 时间不一致',
  ],
  'finding.photo_exif_time_mismatch': [
    'The camera clock disagrees with the phone',
    '相机时间与手机时间不一致',
  ],
  'finding.photo_exif_time_zone_inferred': [
    "The camera's time zone was inferred",
    '相机时区为推断得出',
  ],
  'finding.photo_reused': ['The same photo was used in another order', '同一张照片已用于其他订单'],
  'finding.photo_near_duplicate': [
    'A nearly identical photo is in another order',
    '其他订单中有几乎相同的照片',
  ],
  'finding.photo_repeated': ['The same photo was submitted twice', '同一张照片提交了两次'],
  'finding.track_time_missing': ['Track points have no time', '轨迹点缺少时间'],
  'finding.track_time_not_increasing': ['Track times go backwards', '轨迹时间不递增'],
  'finding.track_impossible_speed': [
    'The track moves impossibly fast',
    '轨迹速度异常（不可能达到）',
  ],
  'finding.track_jump': ['The track jumps', '轨迹出现跳变'],
  'finding.track_never_on_site': ['The track never reaches the site', '轨迹从未到达任务地点'],
  'finding.track_outside_window': [
    'The track lies outside the time window',
    '轨迹不在任务时间窗口内',
  ],
  'finding.track_invalid_point': ['The track has an invalid point', '轨迹含无效点'],
  'finding.track_time_on_site': ['Time spent on site', '在任务地点停留时长'],
  'finding.track_gap': ['The track has a gap', '轨迹存在中断'],
  'finding.track_fast_movement': ['Sustained fast movement on the track', '轨迹显示持续快速移动'],
  'finding.photos_missing': ['Required photos are missing', '缺少要求的照片'],
  'finding.track_missing': ['The required trajectory is missing', '缺少要求的轨迹'],
  'finding.signature_missing': ['The required signature is missing', '缺少要求的签名'],
  'finding.operator_has_issues': ['The reviewer asks for a fix', '审核人员要求改正'],

  'error.network': [
    'The server cannot be reached. Check the connection and try again.',
    '无法连接服务器，请检查网络后重试。',
  ],
  'error.invalid_credentials': ['The login or password is wrong.', '账号或密码错误。'],
  'error.totp_required': [
    'Enter the code from your authenticator app.',
    '请输入身份验证器中的动态码。',
  ],
  'error.invalid_totp': [
    'That code is wrong, expired or already used; wait for the next one.',
    '动态码错误、已过期或已使用，请等待下一个。',
  ],
  'error.invalid_recovery_code': [
    'That recovery code is wrong or was already used.',
    '恢复码错误或已使用。',
  ],
  'error.too_many_attempts': [
    'Too many failed attempts; wait a while before trying again.',
    '失败次数过多，请稍后再试。',
  ],
  'error.session_expired': [
    'Your session has expired. Please sign in again.',
    '会话已过期，请重新登录。',
  ],
  'error.csrf_token_invalid': [
    'This form is out of date; reload the page and try again.',
    '表单已失效，请刷新页面后重试。',
  ],
  'error.forbidden': ['You are not allowed to do this.', '您没有执行此操作的权限。'],
};

function detect() {
  let stored = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch {
    stored = null;
  }
  if (stored === 'zh' || stored === 'en') return stored;
  const first = (navigator.languages && navigator.languages[0]) || navigator.language || 'en';
  return first.toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

let current = detect();

/** 'zh' or 'en'. */
export function lang() {
  return current;
}

/** Chooses a language and remembers the choice. */
export function setLang(value) {
  current = value === 'zh' ? 'zh' : 'en';
  try {
    localStorage.setItem(STORAGE_KEY, current);
  } catch {
    // Private windows may refuse storage; the choice then lasts for this page only.
  }
}

export function has(key) {
  return Object.prototype.hasOwnProperty.call(TEXT, key);
}

/** The text of `key` in the current language; an unknown key shows its last part. */
export function t(key, vars = {}) {
  const entry = TEXT[key];
  const text = entry ? entry[current === 'zh' ? 1 : 0] : key.split('.').pop().replace(/_/g, ' ');
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** A finding in plain words: our text for its code, or the server's sentence. */
export function findingText(finding) {
  return has(`finding.${finding.code}`)
    ? t(`finding.${finding.code}`)
    : finding.message || finding.code;
}

/** An API error as a sentence: our text for its code, or the server's sentence. */
export function errorText(error) {
  return has(`error.${error.code}`) ? t(`error.${error.code}`) : error.message || error.code;
}
